"""The CRM API's changes through one build, on a private copy of the shared small world (no world build of its own,
one extra build). An erasure request end to end: a person with events, CRM records, consent and sync rows is erased
through the CRM API (real server on 127.0.0.1), the build runs, and then EVERY table of every schema
(``duckdb_tables()``), the serving copy and every file under ``$MOS_HOME/activation`` are searched for the person's
values: nothing may be left. The same build ingests the operational store: edits, notes, a relationship and
created people reach the warehouse."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from mos_pipelines.activation import delivery, hashing
from mos_pipelines.configuration import load_activation
from tests.crm_servers import ApiServer, auth, tokens

# Types whose cells cannot hold an identifier; every other column is searched (cast to text).
NOT_TEXT = (
    "BOOLEAN",
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "DATE",
    "BLOB",
)
NOT_TEXT_PREFIXES = ("DECIMAL", "TIMESTAMP", "TIME", "INTERVAL")


def _person(con: duckdb.DuckDBPyConnection) -> str:
    """A customer with CRM records, anonymous ids (events), consent rows and a granted row in the CRM sync model;
    with an order and an audience row when one has them."""
    rows = con.execute(
        """
        with nodes as (
            select customer_id, list(distinct node_type) as types
            from marts.dim_customer_identity_map group by 1
        ),
        consents as (select distinct customer_id from marts.dim_customer_consents),
        synced as (
            select customer_id from activation.sync_crm__lifecycle_stages where consent_status = 'granted'
        ),
        audience as (select distinct customer_id from activation.sync_ads__audience_members)
        select nodes.customer_id
        from nodes
        inner join consents on nodes.customer_id = consents.customer_id
        inner join synced on nodes.customer_id = synced.customer_id
        left join audience on nodes.customer_id = audience.customer_id
        where list_contains(nodes.types, 'crm') and list_contains(nodes.types, 'anon')
        order by list_contains(nodes.types, 'order') desc, audience.customer_id is not null desc, nodes.customer_id
        limit 1
        """
    ).fetchall()
    assert rows, "the shared world has no customer with CRM records, events, consent and a sync row"
    return str(rows[0][0])


def _known_values(con: duckdb.DuckDBPyConnection, customer_id: str) -> list[str]:
    """Everything that identifies the person, lower-cased: ids, emails, phones, anonymous ids, record ids (as the
    identity map and the golden record hold them) and the hashed forms audience files use."""
    values = {customer_id}
    for node_value, record_id in con.execute(
        "select node_value, source_record_id from marts.dim_customer_identity_map where customer_id = ?", [customer_id]
    ).fetchall():
        values.update(v for v in (node_value, record_id) if v)
    email, phone = con.execute(
        "select email, phone_e164 from marts.dim_customers where customer_id = ?", [customer_id]
    ).fetchone()
    values.update(v for v in (email, phone) if v)
    found = {v.strip().lower() for v in values}
    for value in list(found):
        if "@" in value:
            found.add(hashing.sha256_hex(hashing.google_email(value)))
            found.add(hashing.sha256_hex(hashing.meta_email(value)))
    short = sorted(v for v in found if len(v) < 8)
    assert not short, f"values too short to search inside text safely: {short}"
    return sorted(found)


def _matches(con: duckdb.DuckDBPyConnection, values: list[str]) -> dict[str, int]:
    """Rows holding one of ``values`` in any text-like column, per table, over every table of the warehouse."""
    columns: dict[str, list[str]] = {}
    for schema, table, column, data_type in con.execute(
        "select schema_name, table_name, column_name, data_type from duckdb_columns() "
        "where not internal and (schema_name, table_name) in "
        "(select (schema_name, table_name) from duckdb_tables() where not temporary)"
    ).fetchall():
        kind = str(data_type).upper()
        if kind in NOT_TEXT or kind.startswith(NOT_TEXT_PREFIXES):
            continue
        columns.setdefault(f'"{schema}"."{table}"', []).append(column)
    tables = {f'"{s}"."{t}"' for s, t in con.execute("select schema_name, table_name from duckdb_tables()").fetchall()}
    assert len(tables) > 60, f"expected the whole warehouse, found {len(tables)} tables"
    found = {}
    for relation, cols in sorted(columns.items()):
        condition = " or ".join(f'contains(lower(cast("{c}" as varchar)), ?)' for c in cols for _ in values)
        params = [v for _ in cols for v in values]
        rows = con.execute(f"select count(*) from {relation} where {condition}", params).fetchone()[0]
        if rows:
            found[relation] = rows
    return found


def _files_holding(folder: Path, values: list[str]) -> list[str]:
    holding = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="replace").lower()
        if any(v in text for v in values):
            holding.append(str(path.relative_to(folder)))
    return holding


@dataclass
class Built:
    """What the module's one build started from: the erased person and the other API changes made before it."""

    customer_id: str
    values: list[str]
    people_before: int
    request_id: str
    status: dict[str, Any]
    edited: str
    edited_before: dict[str, Any]
    linked: str
    known_email_owner: str
    created_new: str
    created_known: str


@pytest.fixture(scope="module")
def built(world_copy) -> Built:
    """Through the CRM API (real server on 127.0.0.1): erase one person; edit another (a new job title, a cleared
    postcode), write a note on them and link them to a third; create a new person and one with a known person's
    email. Then ONE build."""
    settings = world_copy.settings
    home = settings.mos_home
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        customer_id = _person(con)
        values = _known_values(con, customer_id)
        people_before = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
        # what activation would send: a dry run of the CRM sync (webhook without a URL) and, when the person is in
        # an audience, the Google audience file itself (a real delivery: file, ledger and audit rows)
        config = load_activation()
        report = delivery.deliver(con, "crm__lifecycle_stages", config, home, "erasure-before", dry_run=True)
        assert report.dry_run_file
        in_audience = con.execute(
            "select count(*) from activation.sync_ads__audience_members where customer_id = ?", [customer_id]
        ).fetchone()[0]
        if in_audience:
            delivery.deliver(con, "google_ads__audiences", config, home, "erasure-before-ads", dry_run=False)
        before = _matches(con, values)
        others = [
            r[0]
            for r in con.execute(
                "select customer_id from marts.dim_customers where customer_id <> ? and email is not null "
                "and postcode is not null and job_title is not null order by customer_id limit 3",
                [customer_id],
            ).fetchall()
        ]
        edited, linked, known_email_owner = others
        edited_before = dict(
            zip(
                ("job_title", "postcode", "city"),
                con.execute(
                    "select job_title, postcode, city from marts.dim_customers where customer_id = ?", [edited]
                ).fetchone(),
            )
        )
        known_email = con.execute(
            "select email from marts.dim_customers where customer_id = ?", [known_email_owner]
        ).fetchone()[0]
    finally:
        con.close()
    # the search can fail: before the request the person is all over the warehouse and the activation files
    for table in ('"raw"."events"', '"raw"."crm_contacts"', '"marts"."dim_customers"', '"marts"."fct_sessions"'):
        assert table in before, f"{table} did not hold the person before the erasure: {sorted(before)}"
    assert {t.split(".")[0] for t in before} >= {'"raw"', '"intermediate"', '"marts"', '"activation"'}, sorted(before)
    assert _files_holding(home / "activation", values)

    with tokens(), ApiServer(settings) as api:
        read = api.call("GET", f"/customers/{customer_id}")
        assert read.status_code == 200, read.text
        erased = api.call("DELETE", f"/customers/{customer_id}", If_Match=read.headers["ETag"])
        assert erased.status_code == 202, erased.text
        request_id = erased.json()["request_id"]
        assert api.call("GET", f"/erasure-requests/{request_id}").json()["status"] == "requested"

        tag = api.call("GET", f"/customers/{edited}").headers["ETag"]
        patched = api.call(
            "PATCH", f"/customers/{edited}", json={"job_title": "Chief Growth Officer", "postcode": None}, If_Match=tag
        )
        assert patched.status_code == 200, patched.text
        note = "Call today: budget around 120k EUR, they are evaluating Braze."
        assert api.call("POST", f"/customers/{edited}/notes", json={"body": note}).status_code == 201
        link = {"to_customer_id": linked, "type": "introduced_by", "weight": 0.9, "evidence": "met at the webinar"}
        assert api.call("POST", f"/customers/{edited}/relationships", json=link).status_code == 201
        new = api.call("POST", "/customers", json={"first_name": "Ada", "email": "ada.lovelace@example.org"})
        known = api.call("POST", "/customers", json={"first_name": "Dup", "email": known_email.upper()})
        assert new.status_code == known.status_code == 201, (new.text, known.text)

        outcome = world_copy.run()
        assert outcome.success, outcome.failures

        status = api.call("GET", f"/erasure-requests/{request_id}").json()
    return Built(
        customer_id,
        values,
        people_before,
        request_id,
        status,
        edited,
        edited_before,
        linked,
        known_email_owner,
        new.json()["customer_id"],
        known.json()["customer_id"],
    )


def test_an_erasure_request_removes_the_person_from_every_table_sync_model_and_activation_file(world_copy, built):
    settings = world_copy.settings
    home = settings.mos_home
    customer_id, values, status = built.customer_id, built.values, built.status
    people_before = built.people_before
    assert status["status"] == "applied" and status["applied_at"], status
    assert status["removed"]["raw.events"] > 0 and status["removed"]["raw.crm_contacts"] > 0, status["removed"]

    con = duckdb.connect(str(settings.warehouse_path))
    try:
        after = _matches(con, values)
        assert after == {}, f"the person is still in: {after}"
        people_after = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
        # the person left; the others stayed (shared identifiers may take a merged duplicate with them)
        assert people_before - 3 <= people_after < people_before + 3
        log = dict(con.execute("select table_name, sum(rows_removed) from ops.erasure_log group by 1").fetchall())
        assert log["raw.events"] == status["removed"]["raw.events"]
        assert con.execute("select status from ops.erasure_requests").fetchall() == [("completed",)]
        assert con.execute("select count(*) from ops.erasure_pending").fetchone()[0] == 0

        # a stale sync row (as if the sync model had not been rebuilt) is refused at send time
        con.execute(
            "insert into activation.sync_crm__lifecycle_stages "
            "select * replace (? as customer_id) from activation.sync_crm__lifecycle_stages limit 1",
            [customer_id],
        )
        stale = delivery.deliver(con, "crm__lifecycle_stages", load_activation(), home, "erasure-after", dry_run=True)
        assert stale.blocked_erased == 1
        con.execute("delete from activation.sync_crm__lifecycle_stages where customer_id = ?", [customer_id])
        assert _matches(con, values) == {}
    finally:
        con.close()
    assert _files_holding(home / "activation", values) == []
    serving = duckdb.connect(":memory:")
    rows = serving.execute(
        "select count(*) from read_parquet(?) where customer_id = ?",
        [str(home / "crm" / "dim_customers.parquet"), customer_id],
    ).fetchone()[0]
    assert rows == 0


def test_the_api_changes_reach_the_warehouse_in_the_same_build(world_copy, built):
    """The operational store is a source of the build: edits win survivorship (with history in the snapshot), API
    notes become note attributes, a manual relationship joins the graph, created people go through identity (the
    one with a known email joins that customer; the API answers their id with a 308 to it)."""
    con = duckdb.connect(str(world_copy.settings.warehouse_path), read_only=True)
    try:
        job, postcode, city, fields = con.execute(
            "select job_title, postcode, city, manually_edited_fields from marts.dim_customers where customer_id = ?",
            [built.edited],
        ).fetchone()
        assert (job, postcode, fields) == ("Chief Growth Officer", None, "job_title,postcode")
        assert city == built.edited_before["city"]  # a field nobody edited still follows survivorship
        history = con.execute(
            "select job_title, postcode, dbt_valid_to is null from marts.dim_customers_snapshot "
            "where customer_id = ? order by dbt_valid_from",
            [built.edited],
        ).fetchall()
        assert history == [
            (built.edited_before["job_title"], built.edited_before["postcode"], False),
            ("Chief Growth Officer", None, True),
        ]
        budget, currency, competitors = con.execute(
            "select note_budget_amount, note_budget_currency, note_competitors from marts.dim_customers "
            "where customer_id = ?",
            [built.edited],
        ).fetchone()
        assert (budget, currency, competitors) == (120000.0, "EUR", "Braze")
        matched_by = con.execute(
            "select distinct subject_matched_by from marts.customer_note_attributes n "
            "inner join ops.crm_store_notes s on n.note_id = s.note_id"
        ).fetchall()
        assert matched_by == [("customer_id",)]
        edges = con.execute(
            "select source_id, relationship, target_id, evidence from marts.customer_relationships "
            "where evidence_source = 'manual'"
        ).fetchall()
        assert edges == [(built.edited, "introduced_by", built.linked, "met at the webinar")]
        holders = dict(
            con.execute(
                "select source_record_id, customer_id from marts.dim_customer_identity_map "
                "where source_system = 'mos_crm'"
            ).fetchall()
        )
        assert holders[built.created_known] == built.known_email_owner
        assert holders[built.created_new] != built.known_email_owner
        new_email = con.execute(
            "select email from marts.dim_customers where customer_id = ?", [holders[built.created_new]]
        ).fetchone()[0]
        assert new_email == "ada.lovelace@example.org"
    finally:
        con.close()
    with tokens(), ApiServer(world_copy.settings) as api:
        moved = requests.get(
            api.url(f"/customers/{built.created_known}"), headers=auth(), allow_redirects=False, timeout=30
        )
        assert moved.status_code == 308, moved.text
        assert moved.headers["Location"].endswith(f"/customers/{built.known_email_owner}")
        followed = api.call("GET", f"/customers/{built.created_known}")
        assert followed.status_code == 200 and followed.json()["customer_id"] == built.known_email_owner
