"""Real local servers for the activation tests and benchmark: an SMTP server (aiosmtpd) that delivers
into a Maildir, and an HTTP server (http.server) that records every request and answers from a script.
Both listen on 127.0.0.1 on a free port."""

from __future__ import annotations

import json
import mailbox
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _CountingHandler:
    """Accepts every message and keeps its Message-ID (the benchmark: no disk in the way)."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        for line in envelope.content.split(b"\r\n"):
            if not line:
                break
            if line.lower().startswith(b"message-id:"):
                self.message_ids.append(line.split(b":", 1)[1].strip().decode())
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1; with ``maildir`` every accepted message is stored there (aiosmtpd's
    Mailbox handler), otherwise only counted."""

    def __init__(self, maildir: Path | None = None) -> None:
        self.maildir = maildir
        self.port = free_port()
        self.handler = Mailbox(str(maildir)) if maildir else _CountingHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def messages(self) -> list[mailbox.MaildirMessage]:
        assert self.maildir is not None
        return list(mailbox.Maildir(self.maildir, create=False).itervalues())

    def count(self) -> int:
        if self.maildir is None:
            return len(self.handler.message_ids)
        return sum(1 for _ in (self.maildir / "new").iterdir())


@dataclass
class Request:
    at: float  # time.monotonic() when it arrived
    path: str
    headers: dict[str, str]
    body: Any


Responder = Callable[[Request, int], "tuple[int, dict[str, str]]"]  # (request, its number for the record) -> answer


@dataclass
class WebhookServer:
    """A threading HTTP server on 127.0.0.1 that records requests and answers from ``respond``
    (default: 200 to everything)."""

    respond: Responder | None = None
    requests: list[Request] = field(default_factory=list)
    by_record: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        server = self
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                request = Request(time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server.lock:
                    server.requests.append(request)
                    key = body.get("record_key", "") if isinstance(body, dict) else ""
                    number = server.by_record[key] = server.by_record.get(key, 0) + 1
                status, headers = server.respond(request, number) if server.respond else (200, {})
                payload = b"ok"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> WebhookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def local_activation_config(path: Path, webhook_url: str) -> Path:
    """An override of the bundled activation config (merged over it) with the CRM webhook and Slack pointed at
    ``webhook_url`` and short retry waits, written to ``path``. Destinations are replaced whole by an override,
    so the bundled ones are copied with their URL set."""
    import yaml

    from mos_pipelines.configuration import DOMAINS

    bundled = yaml.safe_load(DOMAINS["activation"].file.read_text())
    data = {
        "destinations": bundled["destinations"],
        "retry": {"max_attempts": 3, "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.2},
    }
    data["destinations"]["crm__lifecycle_stages"]["url"] = webhook_url
    data["destinations"]["slack__top_notifications"]["url"] = webhook_url
    path.write_text(yaml.safe_dump(data))
    return path


@contextmanager
def activation_config_env(path: Path) -> Iterator[Path]:
    """MOS_ACTIVATION_CONFIG=path while the block runs (the deliveries read it at run time)."""
    import os

    previous = os.environ.get("MOS_ACTIVATION_CONFIG")
    os.environ["MOS_ACTIVATION_CONFIG"] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop("MOS_ACTIVATION_CONFIG", None)
        else:
            os.environ["MOS_ACTIVATION_CONFIG"] = previous
