"""``ops.assistant_log``: every question, who asked it, the spec, the SQL, rows returned, latency, model and $.

Answers read the warehouse read-only; the log is a write, made through a short connection of its own after the
answer. When the warehouse is busy (a run holds DuckDB's single writer lock) the row waits in a small file queue
under ``$MOS_HOME/assistant/`` and is written with the next row that gets through. The log never fails an answer.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import duckdb

from mos_pipelines.settings import Settings

log = logging.getLogger("mos_pipelines.assistant")

COLUMNS = {
    "logged_at": "timestamp",
    "thread_id": "varchar",
    "reader": "varchar",
    "role": "varchar",
    "channel": "varchar",  # cli, web, mcp, python
    "question": "varchar",
    "kind": "varchar",
    "spec": "json",
    "sql": "varchar",
    "rows_returned": "integer",
    "latency_ms": "double",
    "model": "varchar",
    "cost_usd": "double",
    "refusal": "varchar",
}
_LOCK = threading.Lock()


def queue_path(settings: Settings) -> Path:
    return settings.mos_home / "assistant" / "log_queue.jsonl"


def mode() -> str:
    """``warehouse`` (default) or ``queue`` (``MOS_ASSISTANT_LOG=queue``: rows stay in the file queue, e.g. while a
    shared test warehouse must not be written)."""
    return os.environ.get("MOS_ASSISTANT_LOG", "warehouse")


def record(settings: Settings, row: dict[str, Any]) -> str:
    """Log one row; returns where it went ("warehouse" or "queue")."""
    row = {k: row.get(k) for k in COLUMNS}
    with _LOCK:
        queue = queue_path(settings)
        queue.parent.mkdir(parents=True, exist_ok=True)
        with queue.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, default=str) + "\n")
        if mode() == "queue":
            return "queue"
        try:
            flush(settings)
        except (duckdb.Error, OSError) as exc:
            log.info("assistant log queued (%s)", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return "queue"
    return "warehouse"


def flush(settings: Settings) -> int:
    """Write every queued row to ``ops.assistant_log`` (one short write connection); returns rows written. The queue
    is renamed before it is read, so rows another process appends meanwhile go to a new queue, not lost."""
    from mos_pipelines.assistant.execute import writing_if_idle

    queue = queue_path(settings)
    if not settings.warehouse_path.exists():
        return 0
    if queue.exists() and queue.stat().st_size:
        queue.replace(queue.with_name(f"{queue.name}.{uuid.uuid4().hex[:12]}.flushing"))
    batches = sorted(queue.parent.glob(f"{queue.name}.*.flushing"))
    rows = []
    for batch in batches:
        for line in batch.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line (a crash mid-write) is dropped, not retried forever
    if not rows:
        for batch in batches:
            batch.unlink(missing_ok=True)
        return 0
    with writing_if_idle() as free:
        if not free:
            raise OSError("answers are reading the warehouse in this process; the rows stay queued")
        _write(settings, rows)
    for batch in batches:
        batch.unlink(missing_ok=True)
    return len(rows)


def _write(settings: Settings, rows: list[dict[str, Any]]) -> None:
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.execute("create schema if not exists ops")
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
        con.execute(f"create table if not exists ops.assistant_log ({columns})")
        marks = ", ".join("?" for _ in COLUMNS)
        con.executemany(
            f"insert into ops.assistant_log ({', '.join(COLUMNS)}) values ({marks})",
            [[r.get(k) if k != "spec" else json.dumps(r.get(k)) for k in COLUMNS] for r in rows],
        )
    finally:
        con.close()
