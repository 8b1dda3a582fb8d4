"""Running compiled SQL read-only: the warehouse opened with ``read_only=True``, external access (files, HTTP,
extensions) disabled and the configuration locked before the statement runs, a timer that interrupts a statement
running past the timeout, and at most ``max_rows`` rows fetched."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from mos_pipelines.warehouse import WarehouseError, open_error

READ_ONLY_CONFIG = {
    "enable_external_access": "false",
    "autoinstall_known_extensions": "false",
    "autoload_known_extensions": "false",
    "allow_community_extensions": "false",
    "lock_configuration": "true",
}


class QueryTimeout(RuntimeError):
    """A statement ran past the assistant's timeout and was interrupted."""


# In one process DuckDB refuses a connection to a file that is open with another configuration: answers (read-only,
# any number at once, e.g. the web app's threads) and the log's short write connection take turns.
_TURNS = threading.Condition()
_readers = 0
_writing = False


@contextmanager
def reading() -> Iterator[None]:
    global _readers
    with _TURNS:
        while _writing:
            _TURNS.wait()
        _readers += 1
    try:
        yield
    finally:
        with _TURNS:
            _readers -= 1
            _TURNS.notify_all()


@contextmanager
def writing_if_idle() -> Iterator[bool]:
    """True (and readers wait) when no answer is reading in this process; False: write later."""
    global _writing
    with _TURNS:
        free = not _readers and not _writing
        if free:
            _writing = True
    try:
        yield free
    finally:
        if free:
            with _TURNS:
                _writing = False
                _TURNS.notify_all()


def _connect(path: Path, wait_s: float = 2.0) -> duckdb.DuckDBPyConnection:
    """A locked-down read-only connection. Another part of this process (e.g. the web app's own pages) may hold the
    file open with DuckDB's default configuration for a moment: wait up to ``wait_s`` for it to close."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(path), read_only=True, config=dict(READ_ONLY_CONFIG))
        except duckdb.Error as exc:
            if "different configuration" not in str(exc):
                raise open_error(path, exc) from exc
            if time.monotonic() > deadline:
                raise WarehouseError(
                    f"The warehouse {path} is held open by another part of this process with DuckDB's default "
                    "configuration; close that connection after each use (or read through "
                    "mos_pipelines.assistant.execute.read_only) and ask again."
                ) from exc
            time.sleep(0.05)


@contextmanager
def read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse, read-only and locked down, closed after the block (a held connection would block runs)."""
    if not path.exists():
        raise WarehouseError(f"No warehouse at {path}. Run `mos run` first to build it.")
    with reading():
        con = _connect(path)
        try:
            yield con
        finally:
            con.close()


def run(
    con: duckdb.DuckDBPyConnection, sql: str, params: tuple[Any, ...], max_rows: int, timeout_s: float
) -> tuple[list[str], list[tuple], bool]:
    """(column names, rows, truncated) of one statement; ``QueryTimeout`` past ``timeout_s``."""
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        con.interrupt()

    timer = threading.Timer(timeout_s, interrupt)
    timer.start()
    try:
        cursor = con.execute(sql, list(params)) if params else con.execute(sql)
        rows = cursor.fetchmany(max_rows + 1)
        names = [d[0] for d in cursor.description or []]
    except duckdb.InterruptException as exc:
        raise QueryTimeout(f"the query ran past {timeout_s:g} s and was stopped") from exc
    except duckdb.Error:
        if timed_out.is_set():
            raise QueryTimeout(f"the query ran past {timeout_s:g} s and was stopped") from None
        raise
    finally:
        timer.cancel()
    return names, rows[:max_rows], len(rows) > max_rows
