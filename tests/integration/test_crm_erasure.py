"""An erasure request end to end, on a private copy of the shared small world (no world build of its own, one extra
build): a person with events, CRM records, consent and sync rows is erased through the CRM API (real server on
127.0.0.1), one build runs, and then EVERY table of every schema (``duckdb_tables()``), the serving copy and every
file under ``$MOS_HOME/activation`` are searched for the person's values: nothing may be left."""

from __future__ import annotations

from pathlib import Path

import duckdb

from mos_pipelines.activation import delivery, hashing
from mos_pipelines.configuration import load_activation
from tests.crm_servers import ApiServer, tokens

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


def test_an_erasure_request_removes_the_person_from_every_table_sync_model_and_activation_file(world_copy):
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

        outcome = world_copy.run()
        assert outcome.success, outcome.failures

        status = api.call("GET", f"/erasure-requests/{request_id}").json()
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
