"""CRM webhooks end to end: changes made through the real API server, delivered by ``crm.webhooks.deliver`` (and
by `mos crm deliver` in a process that is SIGKILLed mid-send) to a real HTTP receiver on 127.0.0.1 that answers
500, 429 with Retry-After and 400; signatures checked by openssl; replayed and stale requests rejected by the
recipe. No world build: a warehouse with 30 people seeded here. About 20 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import duckdb
import pytest
import requests

from mos_pipelines.configuration.activation import RetrySettings
from mos_pipelines.crm import store, webhooks
from mos_pipelines.settings import PROJECT_ROOT, Settings
from tests.crm_servers import ApiServer, Receiver, auth, seed_warehouse, tokens

RETRY = RetrySettings(
    max_attempts=4, backoff_base_seconds=0.05, backoff_max_seconds=0.2, jitter=0.5, max_retry_after_seconds=5
)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    settings = Settings(mos_home=tmp_path_factory.mktemp("crm-hooks"))
    seed_warehouse(settings.warehouse_path, 30)
    return settings


@pytest.fixture(scope="module")
def api(home):
    with tokens(), ApiServer(home) as server:
        yield server


def run_delivery(home: Settings, **kwargs) -> webhooks.WebhookReport:
    db = store.Store.open(home)
    con = duckdb.connect(str(home.warehouse_path))
    try:
        return webhooks.deliver(con, db, RETRY, f"test-{time.monotonic_ns()}", **kwargs)
    finally:
        con.close()
        db.dispose()


def subscribe(api, url: str, events: list[str], filters: dict | None = None) -> dict:
    response = api.call(
        "POST", "/webhooks/subscriptions", json={"url": url, "events": events, "filters": filters or {}}
    )
    assert response.status_code == 201, response.text
    return response.json()


def change_things(api) -> None:
    """Five changes: created, a job-title edit, a city edit, a note, an attribute."""
    cid = "cus_00003"
    tag = api.call("GET", f"/customers/{cid}").headers["ETag"]
    tag = api.call("PATCH", f"/customers/{cid}", json={"job_title": "VP Sales"}, If_Match=tag).headers["ETag"]
    assert api.call("PATCH", f"/customers/{cid}", json={"city": "Lyon"}, If_Match=tag).ok
    assert api.call("POST", f"/customers/{cid}/notes", json={"body": "Wants a demo after the summer."}).ok
    assert api.call("POST", f"/customers/{cid}/attributes", json={"name": "competitor", "value": "Braze"}).ok
    assert api.call("POST", "/customers", json={"email": "new@example.com", "first_name": "New"}).ok


def test_faults_500_429_400_each_change_delivered_once_signed_and_replayable(api, home):
    def respond(event, number):
        kind = event["type"]
        if kind == "customer.created" and number <= 2:
            return 500, {}
        if kind == "note.created" and number == 1:
            return 429, {"Retry-After": "1"}
        if kind == "attribute.changed" and number == 1:
            return 400, {}  # permanent: a dead letter until replayed
        return 200, {}

    with Receiver(respond) as receiver:
        everything = subscribe(api, receiver.url + "/all", list(store.EVENT_TYPES))
        titles = subscribe(api, receiver.url + "/titles", ["customer.updated"], {"fields": ["job_title"]})
        change_things(api)
        report = run_delivery(home)
        by_sub = {s.subscription_id: s for s in report.subscriptions}
        first = by_sub[everything["subscription_id"]]
        assert (first.enqueued, first.acknowledged, first.dead_letter) == (5, 4, 1)
        assert (by_sub[titles["subscription_id"]].enqueued, by_sub[titles["subscription_id"]].acknowledged) == (1, 1)

        all_requests = receiver.of("/all")
        kinds = {r["event"]["id"]: r["event"]["type"] for r in all_requests}
        keys_of: dict[str, set[str]] = {}
        for r in all_requests:
            keys_of.setdefault(r["event"]["id"], set()).add(r["headers"]["idempotency-key"])
        assert all(len(keys) == 1 for keys in keys_of.values())  # retries reuse the change's key
        created = [r for r in all_requests if r["event"]["type"] == "customer.created"]
        assert len(created) == 3  # 500, 500, 200
        note = [r for r in all_requests if r["event"]["type"] == "note.created"]
        assert len(note) == 2 and note[1]["at"] - note[0]["at"] >= 0.95  # Retry-After: 1 respected
        title_events = [r["event"] for r in receiver.of("/titles")]
        assert [e["data"]["changed_fields"] for e in title_events] == [["job_title"]]

        # every request verifies with the subscription's secret; each distinct nonce
        nonces = webhooks.NonceCache()
        for r in all_requests:
            webhooks.verify(everything["secret"], r["headers"], r["raw"], nonces)

        # the dead letter is visible through the API, replayed on request, then delivered once
        dead = api.call("GET", f"/webhooks/subscriptions/{everything['subscription_id']}/deliveries?status=dead_letter")
        assert [kinds[d["event_id"]] for d in dead.json()] == ["attribute.changed"]
        assert (
            api.call("POST", f"/webhooks/subscriptions/{everything['subscription_id']}/replay", json={}).status_code
            == 202
        )
        again = {s.subscription_id: s for s in run_delivery(home).subscriptions}[everything["subscription_id"]]
        assert (again.requeued, again.acknowledged, again.dead_letter) == (1, 1, 0)
        count = len(receiver.requests)
        assert all(s.sent == 0 for s in run_delivery(home).subscriptions)  # nothing left: nothing sent
        assert len(receiver.requests) == count

        # processed once each (the receiver dedupes on the key): 5 changes to /all and the title edit to /titles
        processed = list(receiver.processed.values())
        assert len(processed) == 6 and set(processed) == set(kinds) and len(kinds) == 5
        assert not api.call(
            "GET", f"/webhooks/subscriptions/{everything['subscription_id']}/deliveries?status=dead_letter"
        ).json()

        # an independent implementation of the signature: openssl's HMAC over timestamp + "." + body
        sample = all_requests[-1]
        openssl = subprocess.run(
            ["openssl", "dgst", "-sha256", "-hmac", everything["secret"]],
            input=sample["headers"]["x-mos-timestamp"].encode() + b"." + sample["raw"],
            capture_output=True,
            check=True,
        )
        assert sample["headers"]["x-mos-signature"] == "v1=" + openssl.stdout.decode().split("= ")[-1].strip()

        # the recipe rejects a replay, a stale timestamp, a tampered body and a swapped nonce header
        fresh = webhooks.NonceCache()
        ts = int(sample["headers"]["x-mos-timestamp"])
        webhooks.verify(everything["secret"], sample["headers"], sample["raw"], fresh, now=ts + 10)
        rejected = {}
        for name, headers, raw, now in [
            ("replayed", sample["headers"], sample["raw"], ts + 20),
            ("stale", sample["headers"], sample["raw"], ts + 301),
            ("signature", sample["headers"], sample["raw"].replace(b'"type":', b'"type" :'), ts),
            ("malformed", {**sample["headers"], "x-mos-nonce": "0" * 32}, sample["raw"], ts),
        ]:
            with pytest.raises(webhooks.VerificationError) as caught:
                webhooks.verify(
                    everything["secret"], headers, raw, webhooks.NonceCache() if name != "replayed" else fresh, now=now
                )
            rejected[name] = caught.value.reason
        assert rejected == {
            "replayed": "replayed",
            "stale": "stale",
            "signature": "signature",
            "malformed": "malformed",
        }

        # the attempts are audited in the activation ledger's tables
        con = duckdb.connect(str(home.warehouse_path), read_only=True)
        try:
            statuses = dict(
                con.execute(
                    "select status, count(*) from ops.activation_attempts where destination = ? group by all",
                    [webhooks.destination_of(everything["subscription_id"])],
                ).fetchall()
            )
        finally:
            con.close()
        assert statuses["acknowledged"] == 5 and statuses["retry"] == 3 and statuses["dead_letter"] == 1

        # pause both subscriptions so the next test's deliveries go only to its own
        for sub in (everything, titles):
            tag = api.call("GET", f"/webhooks/subscriptions/{sub['subscription_id']}").headers["ETag"]
            assert api.call(
                "PATCH", f"/webhooks/subscriptions/{sub['subscription_id']}", json={"active": False}, If_Match=tag
            ).ok


def test_a_sender_killed_mid_send_resends_with_the_same_key_and_each_change_is_processed_once(api, home):
    hold = threading.Event()

    def respond(event, number):
        if sum(1 for _ in receiver.requests) == 6 and not hold.is_set():
            hold.set()  # the sender is killed while this answer waits
            time.sleep(2)
        return 200, {}

    with Receiver(respond) as receiver:
        sub = subscribe(api, receiver.url + "/k", ["note.created"])
        for n in range(12):
            assert api.call("POST", "/customers/cus_00011/notes", json={"body": f"note {n}"}).status_code == 201
        env = {**os.environ, "MOS_HOME": str(home.mos_home)}
        command = [sys.executable, "-m", "mos_pipelines.cli", "crm", "deliver", "--json"]
        process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert hold.wait(60), "the sender never reached the sixth change"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert len(receiver.requests) == 6
        finished = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
        import json

        report = {s["subscription_id"]: s for s in json.loads(finished.stdout)["subscriptions"]}[sub["subscription_id"]]
        # the killed batch (all 12: BATCH_SIZE 20) was in flight: resent with the same keys, 5 of them a second time
        assert report["resent_after_crash"] == 12 and report["acknowledged"] == 12
        per_event: dict[str, set[str]] = {}
        for r in receiver.requests:
            per_event.setdefault(r["event"]["id"], set()).add(r["headers"]["idempotency-key"])
        assert len(per_event) == 12 and all(len(keys) == 1 for keys in per_event.values())
        assert len(receiver.requests) == 6 + 12  # the first six twice, each with its key: processed once
        assert sorted(receiver.processed.values()) == sorted(per_event)


def test_golden_record_merges_of_a_build_become_events_once(api, home):
    with Receiver() as receiver:
        sub = subscribe(api, receiver.url + "/m", ["customer.merged"])
        con = duckdb.connect(str(home.warehouse_path))
        try:
            con.execute(
                """create or replace table marts.fct_customer_id_changes as select * from (values
                ('n1', 'cus_00001', 'cus_00002', 'merged', 1, 2, timestamp '2026-12-06 10:00'),
                ('n2', 'cus_00001', 'cus_00002', 'merged', 1, 2, timestamp '2026-12-06 10:00'),
                ('n3', 'cus_00004', null, 'assigned', 2, 2, timestamp '2026-12-06 10:00'))
                t(node_key, customer_id, previous_customer_id, change, id_created_run, run_number, changed_at)"""
            )
        finally:
            con.close()
        first = run_delivery(home)
        second = run_delivery(home)
        assert (first.build_events, second.build_events) == (1, 0)
        [request] = receiver.requests
        assert request["event"]["type"] == "customer.merged"
        assert (
            request["event"]["data"]["previous_customer_id"] == "cus_00002"
            and request["event"]["data"]["nodes_moved"] == 2
        )
        webhooks.verify(sub["secret"], request["headers"], request["raw"], webhooks.NonceCache())


def test_stage_changes_and_matched_people_of_a_build_become_events_once(api, home):
    created = api.call("POST", "/customers", json={"first_name": "Ada", "email": "ada@example.org"})
    assert created.status_code == 201, created.text
    crm_id = created.json()["customer_id"]

    def stages(rows: str) -> None:
        con = duckdb.connect(str(home.warehouse_path))
        try:
            con.execute(
                "create or replace table marts.dim_customer_lifecycle as select * from (values "
                f"{rows}) t(customer_id, lifecycle_stage, stage_entered_at, stage_reason)"
            )
        finally:
            con.close()

    with Receiver() as receiver:
        subscribe(api, receiver.url + "/s", ["customer.updated", "customer.merged"])
        stages(
            "('cus_00030', 'lead', timestamp '2026-12-01', 'r1'), ('cus_00031', 'mql', timestamp '2026-12-01', 'r2')"
        )
        assert run_delivery(home).build_events == 0  # the first stages are the baseline: no events
        stages("('cus_00030', 'mql', timestamp '2026-12-05', 'demo requested'), ('cus_00031', 'mql', null, 'r2')")
        con = duckdb.connect(str(home.warehouse_path))
        try:  # a build's identity matched the person the API created to a warehouse customer
            con.execute(
                "create or replace table marts.dim_customer_identity_map as select * from (values "
                f"('crm:mos_crm:{crm_id}', 'crm', 'mos_crm', '{crm_id}', 'cus_00032')) "
                "t(node_key, node_type, source_system, source_record_id, customer_id)"
            )
        finally:
            con.close()
        first, again = run_delivery(home), run_delivery(home)
        assert (first.build_events, again.build_events) == (2, 0)
        events = {r["event"]["data"]["change"]: r["event"] for r in receiver.of("/s")}
        assert events["stage"]["type"] == "customer.updated"
        assert events["stage"]["data"]["customer_id"] == "cus_00030"
        assert (events["stage"]["data"]["previous_stage"], events["stage"]["data"]["lifecycle_stage"]) == (
            "lead",
            "mql",
        )
        assert events["matched"]["type"] == "customer.merged"
        assert events["matched"]["data"]["previous_customer_id"] == crm_id
        assert events["matched"]["data"]["customer_id"] == "cus_00032"
        # the API now answers the created id with the customer that holds the person (308 keeps the method)
        moved = requests.get(api.url(f"/customers/{crm_id}"), headers=auth(), allow_redirects=False, timeout=30)
        assert moved.status_code == 308 and moved.headers["Location"].endswith("/customers/cus_00032"), moved.text
        listed = requests.get(api.url("/customers?limit=500"), headers=auth(), timeout=30)
        assert crm_id not in {c["customer_id"] for c in listed.json()["items"]}


def test_the_dagster_sensor_launches_and_the_asset_delivers(api, home, monkeypatch):
    import dagster as dg

    from mos_pipelines.defs.crm.assets import crm_webhook_deliveries, crm_webhook_sensor
    from mos_pipelines.defs.resources import MosHome

    monkeypatch.setenv("MOS_HOME", str(home.mos_home))
    with Receiver() as receiver:
        subscribe(api, receiver.url + "/d", ["note.created"])
        assert api.call("POST", "/customers/cus_00020/notes", json={"body": "Dagster, please"}).status_code == 201
        result = crm_webhook_sensor(dg.build_sensor_context())
        assert [r.run_key for r in result.run_requests]  # something to send: a run is requested
        materialized = dg.materialize([crm_webhook_deliveries], resources={"mos": MosHome(mos_home=str(home.mos_home))})
        assert materialized.success
        assert [r["event"]["data"]["note"]["body"] for r in receiver.of("/d")] == ["Dagster, please"]
        assert isinstance(crm_webhook_sensor(dg.build_sensor_context()), dg.SkipReason)
