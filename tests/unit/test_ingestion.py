"""Landing → raw loading: every row loaded or quarantined with file/line/reason, each file once."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from mos_pipelines.ingestion.loader import load_source, reconciliation_errors


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def event(i: int, **overrides) -> str:
    record = {
        "messageId": f"m{i}",
        "type": "track",
        "event": "Product Viewed",
        "timestamp": f"2026-01-01T10:{i:02d}:00Z",
        "anonymousId": f"anon-{i}",
        "properties": {"sku": f"S{i}"},
        "context": {"campaign": {"source": "google", "medium": "cpc"}},
    }
    record.update(overrides)
    return json.dumps({k: v for k, v in record.items() if v is not None})


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def con(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def test_three_malformed_lines_are_quarantined_and_the_rest_loaded(landing, con):
    lines = [event(i) for i in range(10)]
    lines[2] = '{"messageId": "m2", "type": "track", '  # truncated JSON
    lines[5] = event(5, timestamp="not a time")
    lines[8] = event(8, anonymousId=None)  # neither anonymousId nor userId
    write(landing / "events" / "2026-01-01.jsonl", "\n".join(lines) + "\n")

    result = load_source(con, "events", landing)

    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (10, 7, 3)
    quarantined = con.execute(
        "select line, field, reason from raw.quarantine where source = 'events' order by line"
    ).fetchall()
    assert [(line, fld) for line, fld, _ in quarantined] == [(3, None), (6, "timestamp"), (9, "anonymousId, userId")]
    assert quarantined[0][2] == "malformed JSON"
    assert "not a time" in quarantined[1][2] and "ISO 8601" in quarantined[1][2]
    loaded = [r[0] for r in con.execute("select message_id from raw.events order by _line").fetchall()]
    assert loaded == ["m0", "m1", "m3", "m4", "m6", "m7", "m9"]
    assert reconciliation_errors(con, "events") == []


def test_second_load_of_the_same_files_loads_nothing(landing, con):
    write(landing / "events" / "a.jsonl", "\n".join(event(i) for i in range(5)))
    load_source(con, "events", landing)
    write(landing / "events" / "copy_of_a.jsonl", (landing / "events" / "a.jsonl").read_text())

    again = load_source(con, "events", landing)

    assert again.rows_loaded == 0
    assert [f.status for f in again.files] == ["skipped", "skipped"]
    assert con.execute("select count(*) from raw.events").fetchone()[0] == 5
    assert con.execute("select count(*) from ops.file_ledger").fetchone()[0] == 1


def test_fields_outside_the_contract_are_kept_in_extra(landing, con):
    write(landing / "events" / "a.jsonl", event(1, sentAt="2026-01-01T10:00:01Z", integrations={"All": True}) + "\n")
    write(
        landing / "orders" / "o.csv",
        "order_id,amount,currency,status,created_at,coupon\no1,9.5,EUR,completed,2026-01-02T00:00:00Z,WELCOME10\n",
    )
    load_source(con, "events", landing)
    load_source(con, "orders", landing)

    (extra,) = con.execute("select _extra from raw.events").fetchone()
    assert json.loads(extra) == {"sentAt": "2026-01-01T10:00:01Z", "integrations": {"All": True}}
    (extra,) = con.execute("select _extra from raw.orders").fetchone()
    assert json.loads(extra) == {"coupon": "WELCOME10"}


def test_timestamps_with_offsets_are_stored_in_utc(landing, con):
    write(landing / "events" / "a.jsonl", event(1, timestamp="2026-03-01T14:05:00+02:00") + "\n")
    load_source(con, "events", landing)
    (ts,) = con.execute("select strftime(event_timestamp, '%Y-%m-%d %H:%M') from raw.events").fetchone()
    assert ts == "2026-03-01 12:05"


def test_csv_errors_name_line_and_field_even_after_a_multiline_record(landing, con):
    write(
        landing / "orders" / "o.csv",
        "order_id,user_id,email,amount,currency,status,created_at\n"
        'o1,u1,"a note\nover two lines",10.0,USD,completed,2026-01-01T00:00:00Z\n'  # lines 2-3
        'o2,u2,b@x.com,"12,50€",EUR,completed,2026-01-01T00:00:00Z\n'  # line 4: bad amount
        "o3,u3\n"  # line 5: wrong field count
        ",u4,d@x.com,3.0,USD,completed,2026-01-01T00:00:00Z\n"  # line 6: missing order_id
        "o5,u5,e@x.com,4.0,USD,completed,2026-01-01T00:00:00Z\n",
    )
    result = load_source(con, "orders", landing)

    assert (result.rows_loaded, result.rows_quarantined) == (2, 3)
    rows = con.execute("select line, field, reason from raw.quarantine order by line").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(4, "amount"), (5, None), (6, "order_id")]
    assert "12,50€" in rows[0][2]
    assert rows[1][2] == "expected 7 fields, found 2"
    assert rows[2][2] == "missing required field order_id"
    assert con.execute("select _line from raw.orders order by _line").fetchall() == [(2,), (7,)]


def test_unreadable_file_is_reported_and_other_files_still_load(landing, con):
    write(landing / "orders" / "bad.csv", b"\xff\xfe\x00\x01binary")
    write(landing / "orders" / "no_id.csv", "user_id,amount\nu1,3\n")
    write(
        landing / "orders" / "good.csv",
        "order_id,amount,currency,status,created_at\no1,1.0,USD,completed,2026-01-01T00:00:00Z\n",
    )

    result = load_source(con, "orders", landing)

    status = {f.source_file: (f.status, f.error or "") for f in result.files}
    assert status["orders/good.csv"][0] == "loaded"
    assert status["orders/bad.csv"][0] == "unreadable" and "UTF-8" in status["orders/bad.csv"][1]
    assert status["orders/no_id.csv"][0] == "unreadable" and "order_id" in status["orders/no_id.csv"][1]
    assert con.execute("select count(*) from raw.orders").fetchone()[0] == 1
    assert con.execute("select count(*) from ops.file_ledger where status = 'unreadable'").fetchone()[0] == 2


def test_crm_files_use_each_systems_id_column_and_timestamp_format(landing, con):
    write(
        landing / "crm_contacts" / "hubspot" / "c.csv",
        "Record ID,First Name,Create Date\nh1,José,2024-01-05 13:04\nh2,Ann,01/05/2024 13:04\n",
    )
    write(landing / "crm_contacts" / "my_crm" / "c.csv", "source_record_id,email\nx1,a@b.com\n,c@d.com\n")
    load_source(con, "crm_contacts", landing)

    loaded = con.execute(
        "select system, source_record_id, record->>'First Name' from raw.crm_contacts order by 1"
    ).fetchall()
    assert loaded == [("hubspot", "h1", "José"), ("my_crm", "x1", None)]
    reasons = dict(con.execute("select field, reason from raw.quarantine").fetchall())
    assert "%Y-%m-%d %H:%M" in reasons["Create Date"]
    assert reasons["source_record_id"] == "missing required field source_record_id"


def test_reconciliation_reports_rows_missing_from_raw(landing, con):
    write(landing / "events" / "a.jsonl", "\n".join(event(i) for i in range(4)))
    load_source(con, "events", landing)
    con.execute("delete from raw.events where message_id = 'm1'")

    errors = reconciliation_errors(con, "events")

    assert len(errors) == 1 and "events/a.jsonl: 4 rows in the file, 3 in raw.events + 0 quarantined" in errors[0]


def test_header_only_csv_loads_zero_rows(landing, con):
    write(landing / "orders" / "empty.csv", "order_id,user_id,email,amount,currency,status,created_at\n")
    result = load_source(con, "orders", landing)
    assert [(f.status, f.rows_in) for f in result.files] == [("loaded", 0)]
    assert reconciliation_errors(con, "orders") == []


def test_quarantined_csv_records_keep_their_text_with_quotes_and_newlines(landing, con):
    write(
        landing / "orders" / "o.csv",
        "order_id,user_id,email,amount,currency,status,created_at\n"
        'o1,u1,"a note\nover two lines",ten,USD,completed,2026-01-01T00:00:00Z\n'
        'o2,u2,b@x.com,"12,50€",EUR,completed,2026-01-01T00:00:00Z\n',
    )
    load_source(con, "orders", landing)
    raws = [r[0] for r in con.execute("select raw_record from raw.quarantine order by line").fetchall()]
    assert raws == [
        'o1,u1,"a note\nover two lines",ten,USD,completed,2026-01-01T00:00:00Z',
        'o2,u2,b@x.com,"12,50€",EUR,completed,2026-01-01T00:00:00Z',
    ]
