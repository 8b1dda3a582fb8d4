"""Erasure requests on a real (in-memory) DuckDB: identifiers resolved and hashed, raw rows removed before dbt,
every table and activation file purged after the build, the request completed, activation's suppression list."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import duckdb
import pytest

from mos_pipelines.activation import hashing
from mos_pipelines.crm import erasure

CID = "cus_0a1b2c3d4e5f6a7b"
OTHER = "cus_ffffeeeeddddcccc"
EMAIL = "ana.lima@example.com"
ANON = "6f1c2d3e-aaaa-bbbb-cccc-0123456789ab"
PHONE = "+5511961792459"
REQUEST = erasure.Request("era_1", CID, datetime.datetime(2026, 12, 6, 10, 0))


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    for schema in ("raw", "marts", "ops", "activation"):
        con.execute(f"create schema {schema}")
    con.execute(
        "create table marts.dim_customer_identity_map (node_key varchar, customer_id varchar, node_type varchar, "
        "node_value varchar, source_system varchar, source_record_id varchar)"
    )
    con.execute(
        "insert into marts.dim_customer_identity_map values "
        f"('email:{EMAIL}', '{CID}', 'email', '{EMAIL}', null, null), "
        f"('anon:{ANON}', '{CID}', 'anon', '{ANON}', null, null), "
        f"('phone:{PHONE}', '{CID}', 'phone', '{PHONE}', null, null), "
        f"('crm:hubspot:123456789', '{CID}', 'crm', 'hubspot:123456789', 'hubspot', '123456789'), "
        f"('user:u_1', '{CID}', 'user', 'u_1', null, null), "
        f"('email:bo@example.com', '{OTHER}', 'email', 'bo@example.com', null, null)"
    )
    # raw rows as landed: not normalised (case, spaces)
    con.execute("create table raw.events (message_id varchar, anonymous_id varchar, user_id varchar, context varchar)")
    con.execute(
        f"insert into raw.events values ('m1', '{ANON.upper()}', null, '{{}}'), ('m2', 'other-anon', 'u_1', '{{}}'), "
        "('m3', 'other-anon', 'u_2', '{}'), ('m4', null, null, '{}')"
    )
    con.execute("create table raw.email (message_id varchar, recipient_email varchar)")
    con.execute("insert into raw.email values ('e1', ' Ana.Lima@Example.com '), ('e2', 'bo@example.com')")
    con.execute("create table raw.consent (subject varchar, purpose varchar)")
    con.execute(f"insert into raw.consent values ('{EMAIL}', 'email'), ('123456789', 'email'), ('x@y.com', 'email')")
    con.execute("create table raw.crm_contacts (system varchar, source_record_id varchar, record varchar)")
    con.execute(
        "insert into raw.crm_contacts values ('hubspot', '123456789', '{\"Email\":\"ana.lima@example.com\"}'), "
        "('salesforce', '555000111', '{}'), ('hubspot', '999', '{}')"
    )
    con.execute("create table raw.quarantine (source varchar, raw_record varchar)")
    con.execute(f"insert into raw.quarantine values ('orders', 'x,{EMAIL},oops'), ('orders', 'y,bo@example.com')")
    return con


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"select count(*) from {table}").fetchone()[0])


def test_resolve_finds_the_identity_map_nodes_and_the_bare_crm_record_id(con):
    found = erasure.resolve(con, CID)
    assert ("customer", CID) in found and ("email", EMAIL) in found and ("anon", ANON) in found
    assert ("crm", "hubspot:123456789") in found and ("record", "123456789") in found
    assert all(value != "bo@example.com" for _, value in found)


def test_resolve_reads_an_identity_map_that_is_a_view(con):
    """On the Spark engine the dbt relations in DuckDB are views over Spark's files: the identifiers still resolve."""
    con.execute("create table marts.identity_rows as select * from marts.dim_customer_identity_map")
    con.execute("drop table marts.dim_customer_identity_map")
    con.execute("create view marts.dim_customer_identity_map as select * from marts.identity_rows")
    found = erasure.resolve(con, CID)
    assert ("email", EMAIL) in found and ("record", "123456789") in found


def test_prepare_deletes_raw_rows_by_hash_and_keeps_no_raw_value_but_the_pending_ones(con):
    outcomes = erasure.prepare(con, [REQUEST])
    assert con.execute("select message_id from raw.events order by 1").fetchall() == [("m3",), ("m4",)]
    assert con.execute("select message_id from raw.email").fetchall() == [("e2",)]
    assert con.execute("select subject from raw.consent").fetchall() == [("x@y.com",)]
    # other records of the CRM stay
    assert con.execute("select system from raw.crm_contacts order by 1").fetchall() == [("hubspot",), ("salesforce",)]
    assert _count(con, "raw.quarantine") == 1
    assert outcomes["era_1"].removed == {
        "raw.events": 2,
        "raw.email": 1,
        "raw.consent": 2,
        "raw.crm_contacts": 1,
        "raw.quarantine": 1,
        "marts.dim_customer_identity_map": 5,  # every other table is purged before dbt too
    }
    assert con.execute("select customer_id from marts.dim_customer_identity_map").fetchall() == [(OTHER,)]
    kept = " ".join(str(v) for row in con.execute(f"select * from {erasure.IDENTIFIERS}").fetchall() for v in row)
    kept += " ".join(str(v) for row in con.execute(f"select * from {erasure.REQUESTS}").fetchall() for v in row)
    assert CID not in kept and EMAIL not in kept and erasure.sha(EMAIL) in kept
    assert (erasure.sha(EMAIL),) in con.execute(f"select identifier_hash from {erasure.IDENTIFIERS}").fetchall()
    assert _count(con, erasure.PENDING) == 7  # customer, email, anon, phone, crm, record, user


def test_finish_purges_every_table_and_activation_file_then_completes(con, tmp_path):
    erasure.prepare(con, [REQUEST])
    con.execute("create table marts.fct_sessions (session_id varchar, customer_id varchar, seconds integer)")
    con.execute(f"insert into marts.fct_sessions values ('s1', '{CID}', 3), ('s2', '{OTHER}', 4)")
    con.execute("create table ops.insight_evidence (insight_id varchar, evidence json)")
    con.execute(
        "insert into ops.insight_evidence values "
        f"""('i1', '{{"customers": ["{CID}"]}}'), ('i2', '{{"customers": ["{OTHER}"]}}')"""
    )
    con.execute("create table activation.sync_ads (email_sha256 varchar, member struct(id varchar, n integer))")
    google = hashing.sha256_hex(hashing.google_email(EMAIL))
    con.execute(
        f"insert into activation.sync_ads values ('{google}', {{'id': 'x', 'n': 1}}), ('abc', {{'id': '{CID}', 'n': 2}})"
    )
    con.execute("create table ops.counts (label varchar)")  # a short value is matched whole, never inside a cell
    con.execute("insert into ops.counts values ('u_1'), ('menu_1_item')")
    folder = tmp_path / "activation" / "audiences" / "payers"
    folder.mkdir(parents=True)
    (folder / "google.csv").write_text(f"Email,Phone\n{google},\nabc,\n")
    meta = hashing.sha256_hex(hashing.meta_email(EMAIL))
    (folder / "meta.json").write_text(
        json.dumps({"payload": {"schema": ["EMAIL", "PHONE"], "data": [[meta, ""], ["x", ""]]}})
    )
    (folder / "other.csv").write_text("Email\nabc\n")
    before = (folder / "other.csv").stat().st_mtime_ns

    [outcome] = erasure.finish(con, tmp_path)

    assert con.execute("select session_id from marts.fct_sessions").fetchall() == [("s2",)]
    assert con.execute("select insight_id from ops.insight_evidence").fetchall() == [("i2",)]
    assert con.execute("select email_sha256 from activation.sync_ads").fetchall() == []
    assert con.execute("select label from ops.counts").fetchall() == [("menu_1_item",)]
    assert (folder / "google.csv").read_text() == "Email,Phone\nabc,\n"
    assert json.loads((folder / "meta.json").read_text())["payload"]["data"] == [["x", ""]]
    assert (folder / "other.csv").stat().st_mtime_ns == before
    assert outcome.removed["marts.fct_sessions"] == 1 and outcome.removed["raw.events"] == 2
    assert outcome.removed["file:activation/audiences/payers/google.csv"] == 1
    assert _count(con, erasure.PENDING) == 0
    assert con.execute(f"select status from {erasure.REQUESTS}").fetchall() == [("completed",)]
    logged = dict(con.execute(f"select table_name, sum(rows_removed) from {erasure.LOG} group by 1").fetchall())
    assert logged["marts.fct_sessions"] == 1 and logged["raw.email"] == 1
    # a second build finds nothing pending and keeps the hashes
    assert erasure.finish(con, tmp_path) == []
    assert _count(con, erasure.IDENTIFIERS) > 0


def test_a_later_build_removes_new_raw_rows_of_a_completed_request(con, tmp_path):
    erasure.prepare(con, [REQUEST])
    erasure.finish(con, tmp_path)
    con.execute("insert into raw.email values ('e3', 'ANA.LIMA@example.com'), ('e4', 'new@example.com')")
    outcomes = erasure.prepare(con, [REQUEST])  # the same request again: not re-registered
    assert con.execute("select message_id from raw.email order by 1").fetchall() == [("e2",), ("e4",)]
    assert outcomes["era_1"].removed == {"raw.email": 1}
    assert _count(con, erasure.REQUESTS) == 1


def test_no_request_changes_nothing(con, tmp_path):
    rows = _count(con, "raw.events")
    assert erasure.prepare(con, []) == {}
    assert erasure.finish(con, tmp_path) == []
    assert _count(con, "raw.events") == rows


def test_a_request_for_a_person_the_warehouse_never_had_completes_with_nothing_removed(con, tmp_path):
    erasure.prepare(con, [erasure.Request("era_2", "cus_unknown_000000", REQUEST.requested_at)])
    [outcome] = erasure.finish(con, tmp_path)
    assert outcome.removed == {} and outcome.completed_at is not None


def test_erased_customer_ids_is_the_send_time_suppression_list(con):
    assert erasure.erased_customer_ids(con, [CID, OTHER]) == set()  # no table yet
    erasure.prepare(con, [REQUEST])
    assert erasure.erased_customer_ids(con, [CID, OTHER, ""]) == {CID}


def test_text_columns_leave_out_numbers_dates_and_booleans(con):
    con.execute(
        "create table marts.t (a varchar, b integer, c timestamp, d decimal(10, 2), e json, f varchar[], g boolean)"
    )
    assert erasure.text_columns(con, "marts.t") == ["a", "e", "f"]


def test_a_completed_request_searches_only_raw_rows_loaded_since_it_was_registered(con, tmp_path):
    con.execute("create table raw.orders (order_id varchar, email varchar, user_id varchar, _loaded_at timestamp)")
    erasure.prepare(con, [REQUEST])
    erasure.finish(con, tmp_path)
    con.execute(
        f"insert into raw.orders values ('o1', '{EMAIL}', null, timestamp '2000-01-01'), "
        f"('o2', '{EMAIL}', null, now()::timestamp + interval 1 hour), ('o3', 'bo@example.com', null, now()::timestamp)"
    )
    outcomes = erasure.prepare(con, [REQUEST])
    assert outcomes["era_1"].removed == {"raw.orders": 1}
    assert con.execute("select order_id from raw.orders order by 1").fetchall() == [("o1",), ("o3",)]


def test_the_sql_hash_and_the_staging_macro_hash_as_python_does():
    con = duckdb.connect(":memory:")
    sql = con.execute(f"select {erasure.sql_hash('x')} from (select ' Ana.Lima@Example.com ' as x)").fetchone()[0]
    assert sql == erasure.sha(EMAIL) != hashing.sha256_hex(EMAIL)  # never the plain hash audience files carry
    macro = (Path(__file__).parents[2] / "dbt_project" / "macros" / "staging" / "not_erased.sql").read_text()
    assert f"sha256_hex(\"'{erasure.HASH_PREFIX}' || lower(trim(" in macro
    dispatch = (Path(__file__).parents[2] / "dbt_project" / "macros" / "cross_db" / "sha256_hex.sql").read_text()
    assert "duckdb__sha256_hex" in dispatch and "sha256({{ expr }})" in dispatch
