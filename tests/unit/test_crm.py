"""The CRM's pure parts: signing and verification, subscription filters, cursors, the merge of warehouse and edits."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json

import pytest

from mos_pipelines.crm import customers, webhooks

SECRET = "whsec_test"


def test_signature_is_hmac_sha256_over_timestamp_dot_body_and_the_nonce_is_signed():
    body, headers = webhooks.signed_request(SECRET, {"id": "evt_1", "type": "note.created"}, now=1_800_000_000)
    expected = hmac.new(SECRET.encode(), b"1800000000." + body, hashlib.sha256).hexdigest()
    assert headers["X-MOS-Signature"] == f"v1={expected}" and headers["X-MOS-Timestamp"] == "1800000000"
    assert json.loads(body)["nonce"] == headers["X-MOS-Nonce"]
    event = webhooks.verify(SECRET, headers, body, webhooks.NonceCache(), now=1_800_000_100)
    assert event["id"] == "evt_1"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("wrong_secret", "signature"),
        ("late", "stale"),
        ("early", "stale"),
        ("no_timestamp", "malformed"),
        ("other_nonce_header", "malformed"),
        ("replay", "replayed"),
    ],
)
def test_verify_rejects(change, reason):
    body, headers = webhooks.signed_request(SECRET, {"id": "evt_2"}, now=1_800_000_000)
    nonces, now, secret = webhooks.NonceCache(), 1_800_000_000, SECRET
    if change == "wrong_secret":
        secret = "whsec_other"
    elif change == "late":
        now += 301
    elif change == "early":
        now -= 301
    elif change == "no_timestamp":
        headers = {k: v for k, v in headers.items() if k != "X-MOS-Timestamp"}
    elif change == "other_nonce_header":
        headers = {**headers, "X-MOS-Nonce": "f" * 32}
    elif change == "replay":
        webhooks.verify(SECRET, headers, body, nonces, now=now)
    with pytest.raises(webhooks.VerificationError) as caught:
        webhooks.verify(secret, headers, body, nonces, now=now)
    assert caught.value.reason == reason


def _event(kind: str, **data) -> dict:
    return {"type": kind, "data": data}


def test_subscription_filters_by_type_changed_fields_attribute_and_record_value():
    sub = {"events": ["customer.updated"], "filters": {"fields": ["email"], "country_code": ["DE", "AT"]}}
    de = {"customer": {"country_code": "DE"}}
    assert webhooks.matches(sub, _event("customer.updated", changed_fields=["email", "city"], **de))
    assert not webhooks.matches(sub, _event("customer.updated", changed_fields=["city"], **de))
    assert not webhooks.matches(
        sub, _event("customer.updated", changed_fields=["email"], customer={"country_code": "FR"})
    )
    assert not webhooks.matches(sub, _event("customer.created", changed_fields=["email"], **de))
    attributes = {"events": ["attribute.changed"], "filters": {"attribute": "budget_amount"}}
    assert webhooks.matches(attributes, _event("attribute.changed", name="budget_amount", attribute={}))
    assert not webhooks.matches(attributes, _event("attribute.changed", name="competitor", attribute={}))


def test_cursor_round_trips_and_is_bound_to_its_filters():
    cursor = customers.encode_cursor("cus_00042", {"company": "Acme"})
    assert customers.decode_cursor(cursor, {"company": "Acme"}) == "cus_00042"
    with pytest.raises(customers.BadCursor, match="other filters"):
        customers.decode_cursor(cursor, {"company": "Other"})
    with pytest.raises(customers.BadCursor, match="not a cursor"):
        customers.decode_cursor("garbage!", {})


def test_merge_edits_win_and_erased_or_missing_people_are_absent():
    base = {"customer_id": "cus_1", **dict.fromkeys(customers.FIELDS), "email": "a@x.io", "city": "Paris"}
    now = datetime.datetime(2026, 12, 6)
    record = {
        "customer_id": "cus_1",
        "source": "warehouse",
        "fields": {"city": "Lyon"},
        "erased_at": None,
        "version": 3,
        "updated_at": now,
    }
    merged = customers.merge(base, record)
    assert merged is not None
    assert (merged["email"], merged["city"], merged["edited_fields"], merged["version"]) == (
        "a@x.io",
        "Lyon",
        ["city"],
        3,
    )
    assert customers.merge(base, {**record, "erased_at": now}) is None
    assert customers.merge(None, record) is None  # an edit of a person the warehouse no longer has
    assert customers.etag(merged) != customers.etag({**merged, "city": "Paris"})


def test_the_store_copy_keeps_edits_people_notes_and_edges_but_nothing_of_erased_people(tmp_path):
    import duckdb

    from mos_pipelines.crm import ingest, store

    db = store.Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    now = datetime.datetime(2026, 12, 7, 9, 0)
    later = now + datetime.timedelta(minutes=5)
    stamps = {"version": 2, "created_at": now, "updated_at": now}  # executemany: every row names the same keys
    with db.write() as conn:
        conn.execute(
            store.customers.insert(),
            [
                {
                    "customer_id": "cus_1",
                    "source": "warehouse",
                    "fields": {"city": "Lyon", "postcode": None},
                    "erased_at": None,
                    **stamps,
                },
                {
                    "customer_id": "crm_2",
                    "source": "crm",
                    "fields": {"email": "a@b.co", "birth_date": "1990-02-03"},
                    "erased_at": None,
                    **stamps,
                },
                {"customer_id": "cus_3", "source": "warehouse", "fields": {}, "erased_at": now, **stamps},
            ],
        )
        conn.execute(
            store.notes.insert(),
            [
                {"note_id": "n1", "customer_id": "cus_1", "body": "budget 120k", "author": "analyst", **stamps},
                {"note_id": "n2", "customer_id": "cus_3", "body": "erased", "author": "analyst", **stamps},
            ],
        )
        conn.execute(
            store.relationships.insert(),
            [
                {
                    "relationship_id": "r1",
                    "from_customer_id": "cus_1",
                    "to_customer_id": "crm_2",
                    "type": "colleague",
                    "weight": 1.0,
                    **stamps,
                },
                {
                    "relationship_id": "r2",
                    "from_customer_id": "cus_1",
                    "to_customer_id": "cus_3",
                    "type": "colleague",
                    "weight": 1.0,
                    **stamps,
                },
            ],
        )
    con = duckdb.connect(":memory:")
    copied = ingest.copy_store(con, db)
    assert copied.rows == {
        "crm_store_edits": 2,
        "crm_store_people": 1,
        "crm_store_notes": 1,
        "crm_store_relationships": 1,
    }
    assert copied.newest_change == now
    # the fingerprint the build plan reads: an edit moves it, reading does not
    before = ingest.store_fingerprint(db)
    assert ingest.store_fingerprint(db) == before and ingest.store_fingerprint(None) == "no store"
    with db.write() as conn:
        conn.execute(
            store.notes.update().where(store.notes.c.note_id == "n1").values(body="budget 150k", updated_at=later)
        )
    assert ingest.store_fingerprint(db) != before
    assert con.execute("select customer_id, field, value from ops.crm_store_edits order by field").fetchall() == [
        ("cus_1", "city", "Lyon"),
        ("cus_1", "postcode", None),  # a cleared field is an edit too
    ]
    assert con.execute("select crm_record_id, email, birth_date from ops.crm_store_people").fetchall() == [
        ("crm_2", "a@b.co", "1990-02-03")
    ]
    # no store yet: the same tables, empty and typed (the staging models read them either way)
    empty = duckdb.connect(":memory:")
    assert ingest.copy_store(empty, None).rows == dict.fromkeys(ingest.COLUMNS, 0)
    assert empty.execute(
        "select data_type from information_schema.columns where table_name = 'crm_store_edits' and column_name = 'edited_at'"
    ).fetchone() == ("TIMESTAMP",)
