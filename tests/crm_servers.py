"""The CRM API on a real uvicorn server on 127.0.0.1 (a bare FastAPI app until the web app mounts the router),
a warehouse seeded with a ``marts.dim_customers`` of n people, and the users' tokens."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import requests
import uvicorn
from fastapi import FastAPI

from mos_pipelines.crm.api import router
from mos_pipelines.settings import Settings

TOKENS = {"analyst": "analyst-token-1", "performance_marketer": "marketer-token-1", "admin": "admin-token-1"}
COMPANIES = [f"Company {i:02d}" for i in range(50)]


@contextmanager
def tokens() -> Iterator[None]:
    """The users' token variables set while the block runs (restored after, so other modules see their own)."""
    names = {f"MOS_TOKEN_{user.upper()}": token for user, token in TOKENS.items()}
    before = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def auth(user: str = "analyst", **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}", **{k.replace("_", "-"): v for k, v in headers.items()}}


def seed_warehouse(path: Path, people: int) -> None:
    """``marts.dim_customers`` with ``people`` rows (ids cus_00000…), 50 companies, a few countries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema if not exists marts")
        con.execute(
            f"""create or replace table marts.dim_customers as
            select 'cus_' || lpad(cast(i as varchar), 5, '0') as customer_id,
                'First' || i as first_name, 'Last' || (i % 997) as last_name,
                'person' || i || '@example.com' as email, '+4915' || lpad(cast(i as varchar), 9, '0') as phone_e164,
                'Company ' || lpad(cast(i % 50 as varchar), 2, '0') as company,
                case when i % 3 = 0 then 'Engineer' else 'Marketer' end as job_title,
                ['DE', 'FR', 'US', 'GB'][1 + i % 4] as country_code, 'City' || (i % 20) as city,
                cast(null as varchar) as postcode, date '1980-01-01' + cast(i % 9000 as integer) as birth_date,
                ['crm'] as source_systems, true as is_identified
            from range({people}) t(i)"""
        )
    finally:
        con.close()


class ApiServer:
    """uvicorn in a thread of this process serving the CRM router at /api/v1."""

    def __init__(self, settings: Settings) -> None:
        from tests.activation_servers import free_port

        self.settings = settings
        self.app = FastAPI(title="MOS CRM API (test)")
        self.app.include_router(router(settings), prefix="/api/v1")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the CRM API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def url(self, path: str) -> str:
        return self.base + path

    def call(self, method: str, path: str, user: str = "analyst", json: Any = None, **headers: str) -> Any:
        return requests.request(method, self.url(path), json=json, headers=auth(user, **headers), timeout=30)


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every request's raw body and headers, answers from ``respond``
    ((event, number of this event's requests so far) -> (status, headers); default 200) and deduplicates on
    Idempotency-Key: ``processed`` holds each key answered 2xx once, as a real receiver would."""

    def __init__(self, respond: Any = None) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self
        self.respond = respond
        self.requests: list[dict[str, Any]] = []
        self.processed: dict[str, str] = {}  # idempotency key -> event id
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
                import json as _json

                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = _json.loads(raw)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    number = 1 + sum(r["event"]["id"] == event["id"] for r in receiver.requests)
                    receiver.requests.append(
                        {"at": time.monotonic(), "path": self.path, "headers": headers, "raw": raw, "event": event}
                    )
                status, extra = receiver.respond(event, number) if receiver.respond else (200, {})
                if 200 <= status < 300:
                    with receiver.lock:
                        receiver.processed.setdefault(headers["idempotency-key"], event["id"])
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender was killed while we answered
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def of(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]
