"""CRM API and webhook figures on a real uvicorn server (127.0.0.1) over a seeded ``marts.dim_customers``.

    .venv/bin/python benchmarks/crm_api_bench.py --people 100000 --edits 1000 --events 500

Measures: list pages (limit 100) walked from the start, GET one, PATCH (sequential), a full walk of every customer
at limit 500, and webhook deliveries per second to a local receiver. Appends one JSON line to
benchmarks/results/crm_api.jsonl with the load average beside the figures."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402

from mos_pipelines.configuration.activation import RetrySettings  # noqa: E402
from mos_pipelines.crm import customers, store, webhooks  # noqa: E402
from mos_pipelines.settings import Settings  # noqa: E402
from tests.crm_servers import ApiServer, Receiver, seed_warehouse, tokens  # noqa: E402


def ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
    }


def timed(call, *args, **kwargs) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call(*args, **kwargs)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--edits", type=int, default=1_000, help="warehouse customers edited through the API first")
    parser.add_argument("--events", type=int, default=500, help="notes posted, then delivered to one subscriber")
    parser.add_argument("--no-copy", action="store_true", help="read the warehouse per request (no serving copy)")
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    home = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    settings = Settings(mos_home=home)
    seed_warehouse(settings.warehouse_path, args.people)
    figures: dict[str, object] = {"people": args.people, "edits": args.edits, "events": args.events}
    if not args.no_copy:  # what the build's crm/customers_serving_copy asset does
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        customers.publish(con, home)
        con.close()
    figures["serving_copy"] = not args.no_copy
    with tokens(), ApiServer(settings) as api:
        patch_times = []
        for i in range(args.edits):
            cid = f"cus_{(i * 97) % args.people:05d}"
            tag = api.call("GET", f"/customers/{cid}").headers["ETag"]
            seconds, response = timed(api.call, "PATCH", f"/customers/{cid}", json={"city": f"C{i}"}, If_Match=tag)
            assert response.status_code == 200, response.text
            patch_times.append(seconds)
        figures["patch"] = ms(patch_times) if patch_times else None
        gets = [timed(api.call, "GET", f"/customers/cus_{i * 7:05d}")[0] for i in range(200)]
        figures["get_one"] = ms(gets)
        pages, cursor = [], None
        for _ in range(50):
            seconds, response = timed(api.call, "GET", "/customers?limit=100" + (f"&cursor={cursor}" if cursor else ""))
            pages.append(seconds)
            cursor = response.json()["next_cursor"]
        figures["list_page_100"] = ms(pages)
        started, count, cursor = time.perf_counter(), 0, None
        while True:
            page = api.call("GET", "/customers?limit=500" + (f"&cursor={cursor}" if cursor else "")).json()
            count += len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        figures["full_walk_500"] = {"customers": count, "seconds": round(time.perf_counter() - started, 2)}
        with Receiver() as receiver:
            sub = api.call(
                "POST", "/webhooks/subscriptions", json={"url": receiver.url + "/b", "events": ["note.created"]}
            )
            assert sub.status_code == 201
            for n in range(args.events):
                assert api.call("POST", "/customers/cus_00001/notes", json={"body": f"note {n}"}).status_code == 201
            db = store.Store.open(settings)
            con = duckdb.connect(str(settings.warehouse_path))
            retry = RetrySettings(
                max_attempts=3,
                backoff_base_seconds=0.05,
                backoff_max_seconds=0.2,
                jitter=0.5,
                max_retry_after_seconds=5,
            )
            seconds, report = timed(webhooks.deliver, con, db, retry, "bench")
            con.close()
            assert len(receiver.processed) == args.events
            figures["webhooks"] = {
                "delivered": args.events,
                "seconds": round(seconds, 2),
                "per_second": round(args.events / seconds, 1),
            }
    figures["load_average"] = os.getloadavg()
    figures["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(json.dumps(figures, indent=2))
    out = Path(__file__).parent / "results" / "crm_api.jsonl"
    with open(out, "a") as handle:
        handle.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
