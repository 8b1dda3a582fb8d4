"""The CRM API against a real uvicorn server on 127.0.0.1, a real SQLite operational store and a DuckDB warehouse
with a ``marts.dim_customers`` of 10,000 people (seeded here: no world build). Cheap: about 10 s."""

from __future__ import annotations

import threading

import duckdb
import pytest

from mos_pipelines.crm import customers
from mos_pipelines.settings import Settings
from tests.crm_servers import COMPANIES, ApiServer, seed_warehouse, tokens

PEOPLE = 10_000


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    home = tmp_path_factory.mktemp("crm-api")
    settings = Settings(mos_home=home)
    seed_warehouse(settings.warehouse_path, PEOPLE)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        assert customers.publish(con, home) == PEOPLE  # what the build's crm/customers_serving_copy asset does
    finally:
        con.close()
    with tokens(), ApiServer(settings) as server:
        yield server


def loc(response) -> list[list[str]]:
    return [item["loc"] for item in response.json()["detail"]]


def test_create_read_patch_delete_round_trip_with_etags_idempotency_and_erasure(api):
    body = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "company": "Analytical"}
    created = api.call("POST", "/customers", json=body, Idempotency_Key="create-ada-1")
    assert created.status_code == 201, created.text
    customer = created.json()
    cid, tag = customer["customer_id"], created.headers["ETag"]
    assert customer["source"] == "crm" and customer["email"] == "ada@example.com"

    # the same key and body: the stored answer, not a second customer; the same key with another body: a 422
    again = api.call("POST", "/customers", json=body, Idempotency_Key="create-ada-1")
    assert again.status_code == 201 and again.json()["customer_id"] == cid
    assert again.headers["Idempotent-Replayed"] == "true" and again.headers["ETag"] == tag
    other = api.call("POST", "/customers", json={**body, "email": "eve@example.com"}, Idempotency_Key="create-ada-1")
    assert other.status_code == 422 and loc(other) == [["header", "Idempotency-Key"]]
    assert "create-ada-1" in other.json()["detail"][0]["msg"]
    ada = api.call("GET", "/customers?email=ada@example.com").json()["items"]
    assert [c["customer_id"] for c in ada] == [cid]  # one customer despite two POSTs

    read = api.call("GET", f"/customers/{cid}")
    assert read.status_code == 200 and read.headers["ETag"] == tag and read.json() == customer

    assert api.call("PATCH", f"/customers/{cid}", json={"job_title": "Analyst"}).status_code == 428
    patched = api.call("PATCH", f"/customers/{cid}", json={"job_title": "Analyst"}, If_Match=tag)
    assert patched.status_code == 200, patched.text
    assert patched.json()["job_title"] == "Analyst" and patched.json()["version"] == 2
    new_tag = patched.headers["ETag"]
    assert new_tag != tag
    stale = api.call("PATCH", f"/customers/{cid}", json={"job_title": "CEO"}, If_Match=tag)
    assert stale.status_code == 412 and new_tag in stale.json()["detail"][0]["msg"]
    assert api.call("GET", f"/customers/{cid}").json()["job_title"] == "Analyst"

    assert api.call("DELETE", f"/customers/{cid}", If_Match=tag).status_code == 412
    erased = api.call("DELETE", f"/customers/{cid}", If_Match=new_tag)
    assert erased.status_code == 202 and erased.json()["status"] == "requested"
    assert api.call("GET", f"/customers/{cid}").status_code == 410
    requests_ = api.call("GET", "/erasure-requests").json()
    assert [r["customer_id"] for r in requests_ if r["customer_id"] == cid] == [cid]
    one = api.call("GET", f"/erasure-requests/{erased.json()['request_id']}").json()
    assert one["status"] == "requested" and one["removed"] is None  # a build applies it (test_crm_erasure.py)
    assert api.call("GET", "/erasure-requests/era_unknown").status_code == 404


def test_warehouse_customer_edit_wins_and_masks_and_roles(api):
    read = api.call("GET", "/customers/cus_00007")
    assert read.status_code == 200 and read.json()["source"] == "warehouse" and read.json()["version"] == 0
    patched = api.call("PATCH", "/customers/cus_00007", json={"city": "Berlin"}, If_Match=read.headers["ETag"])
    assert patched.status_code == 200
    after = patched.json()
    assert after["city"] == "Berlin" and after["edited_fields"] == ["city"]
    assert after["email"] == "person7@example.com"  # the warehouse's other fields are still there

    masked = api.call("GET", "/customers/cus_00007", user="performance_marketer").json()
    assert masked["email"] == "p***@example.com" and masked["first_name"] == "F." and masked["city"] == "Berlin"
    denied = api.call("PATCH", "/customers/cus_00007", user="performance_marketer", json={"city": "X"}, If_Match="*")
    assert denied.status_code == 403 and "write_crm" in denied.json()["detail"]
    import requests

    assert requests.get(api.url("/customers/cus_00007"), timeout=10).status_code == 401
    assert api.call("GET", "/customers/cus_99999").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/customers", {"email": "not-an-email"}, "email"),
        ("/customers", {"email": "a@b.co", "shoe_size": 44}, "shoe_size"),
        ("/customers", {"email": "a@b.co", "country_code": "germany"}, "country_code"),
        ("/customers", {"email": "a@b.co", "birth_date": "31/12/1990"}, "birth_date"),
        ("/customers/cus_00001/attributes", {"name": "Budget Amount", "value": 1}, "name"),
        ("/customers/cus_00001/attributes", {"name": "budget", "confidence": 2}, "confidence"),
        ("/customers/cus_00001/relationships", {"to_customer_id": "cus_00002", "type": "friend"}, "type"),
        ("/webhooks/subscriptions", {"url": "ftp://x", "events": ["customer.updated"]}, "url"),
        ("/webhooks/subscriptions", {"url": "http://x.y", "events": ["customer.eaten"]}, "events"),
        (
            "/webhooks/subscriptions",
            {"url": "http://x.y", "events": ["note.created"], "filters": {"shoe": "1"}},
            "filters",
        ),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(api, path, body, field):
    response = api.call("POST", path, json=body)
    assert response.status_code == 422, response.text
    assert any(field in [str(part) for part in item] for item in loc(response)), response.json()


def test_pagination_walks_10k_customers_once_each_while_records_are_edited_and_created(api):
    seen: list[str] = []
    cursor = None
    pages = 0
    late = ""
    while True:
        response = api.call("GET", "/customers?limit=500" + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200
        page = response.json()
        seen += [c["customer_id"] for c in page["items"]]
        pages += 1
        if pages == 3:  # edits and creations mid-walk: an edited record is not repeated, nor skipped
            tag = api.call("GET", "/customers/cus_09000").headers["ETag"]
            assert api.call("PATCH", "/customers/cus_09000", json={"company": "Moved"}, If_Match=tag).ok
            late = api.call("POST", "/customers", json={"email": "late@example.com"}).json()["customer_id"]
        cursor = page["next_cursor"]
        if cursor is None:
            assert not page["has_more"]
            break
    assert len(seen) == len(set(seen)) and seen == sorted(seen)
    warehouse = [s for s in seen if s.startswith("cus_")]
    assert len(warehouse) == PEOPLE
    assert late not in seen and late < seen[1500]  # created behind the cursor: the walk stays stable
    assert late in [c["customer_id"] for c in api.call("GET", "/customers?limit=10").json()["items"]]


def test_filtered_pagination_matches_the_warehouse_and_a_cursor_is_bound_to_its_filters(api, tmp_path):
    company = COMPANIES[3]
    got, cursor = [], None
    while True:
        page = api.call("GET", f"/customers?company={company}&limit=37" + (f"&cursor={cursor}" if cursor else ""))
        got += [c["customer_id"] for c in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
        foreign = cursor
    assert len(got) == PEOPLE // len(COMPANIES)
    assert all(api.call("GET", f"/customers/{g}").json()["company"] == company for g in got[:5])
    bad = api.call("GET", f"/customers?company={COMPANIES[4]}&cursor={foreign}")
    assert bad.status_code == 422 and loc(bad) == [["query", "cursor"]]


def test_two_concurrent_writers_on_one_record_one_wins_one_gets_412(api):
    outcomes = []
    for round_ in range(4):  # the first round inserts the override row, the next ones compare-and-set it
        read = api.call("GET", "/customers/cus_04242")
        tag = read.headers["ETag"]
        barrier = threading.Barrier(2)
        results: list[int] = []

        def write(title: str, tag: str = tag, barrier=barrier, results=results) -> None:
            barrier.wait()
            results.append(
                api.call("PATCH", "/customers/cus_04242", json={"job_title": title}, If_Match=tag).status_code
            )

        threads = [threading.Thread(target=write, args=(f"T{round_}-{n}",)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        outcomes.append(sorted(results))
    assert outcomes == [[200, 412]] * 4
    assert api.call("GET", "/customers/cus_04242").json()["version"] == 4


def test_attributes_notes_relationships_round_trip(api):
    made = api.call(
        "POST", "/customers/cus_00100/attributes", json={"name": "budget_amount", "value": 120000, "confidence": 0.9}
    )
    assert made.status_code == 201
    attribute = made.json()
    dup = api.call("POST", "/customers/cus_00100/attributes", json={"name": "budget_amount", "value": 1})
    assert dup.status_code == 409 and loc(dup) == [["body", "name"]]
    changed = api.call(
        "PATCH", f"/attributes/{attribute['attribute_id']}", json={"value": 90000}, If_Match=made.headers["ETag"]
    )
    assert changed.status_code == 200 and changed.json()["value"] == 90000
    assert [a["value"] for a in api.call("GET", "/customers/cus_00100/attributes").json()] == [90000]

    note = api.call("POST", "/customers/cus_00100/notes", json={"body": "Budget about 90k, decision next quarter."})
    assert note.status_code == 201 and note.json()["author"] == "analyst"
    assert api.call("POST", "/customers/cus_99999/notes", json={"body": "x"}).status_code == 404

    rel = api.call(
        "POST",
        "/customers/cus_00100/relationships",
        json={"to_customer_id": "cus_00101", "type": "reports_to", "weight": 0.8},
    )
    assert rel.status_code == 201
    assert [r["relationship_id"] for r in api.call("GET", "/customers/cus_00101/relationships").json()] == [
        rel.json()["relationship_id"]
    ]
    nobody = api.call(
        "POST", "/customers/cus_00100/relationships", json={"to_customer_id": "cus_nobody", "type": "colleague"}
    )
    assert nobody.status_code == 422 and loc(nobody) == [["body", "to_customer_id"]]
    null_type = api.call(
        "PATCH", f"/relationships/{rel.json()['relationship_id']}", json={"type": None}, If_Match=rel.headers["ETag"]
    )
    assert null_type.status_code == 422 and loc(null_type) == [["body", "type"]]
    gone = api.call("DELETE", f"/relationships/{rel.json()['relationship_id']}", If_Match=rel.headers["ETag"])
    assert gone.status_code == 204
    assert api.call("GET", "/customers/cus_00101/relationships").json() == []


def test_openapi_documents_the_routes_with_tags_and_examples(api):
    import requests

    spec = requests.get(f"http://127.0.0.1:{api.port}/openapi.json", timeout=10).json()
    paths = spec["paths"]
    assert {"/api/v1/customers", "/api/v1/customers/{customer_id}", "/api/v1/webhooks/subscriptions"} <= set(paths)
    assert paths["/api/v1/customers"]["get"]["tags"] == ["customers"]
    assert paths["/api/v1/customers"]["post"]["summary"] == "Create a customer"
    assert spec["components"]["schemas"]["CustomerCreate"]["examples"]


def test_reads_do_not_wait_for_a_process_writing_the_warehouse(api, tmp_path):
    """Another process holds the warehouse (as a build does): reads come from the serving copy; without the copy a
    read is a 503 with Retry-After, never a hang."""
    import subprocess
    import sys

    warehouse = api.settings.warehouse_path
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert api.call("GET", "/customers/cus_00005").status_code == 200
        assert len(api.call("GET", "/customers?limit=20&company=Company%2005").json()["items"]) == 20
        copy = api.settings.mos_home / "crm" / "dim_customers.parquet"
        copy.rename(tmp_path / "aside.parquet")
        try:
            busy = api.call("GET", "/customers/cus_00005")
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
            assert str(warehouse) in busy.json()["detail"]
        finally:
            (tmp_path / "aside.parquet").rename(copy)
    finally:
        holder.kill()
        holder.wait()
