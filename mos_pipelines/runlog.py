"""Everything a command-line run prints goes to a log file; the console keeps only its progress display.

dbt's lines (dagster-dbt re-emits them on ``sys.stdout``), Dagster's event log, library warnings and
anything a subprocess writes to the inherited file descriptors are captured at both levels: the Python
streams and file descriptors 1 and 2. The console handle returned writes where standard output went
before, so a progress bar and the final message still reach the person who ran the command.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def log_path(logs_dir: Path, command: str, when: datetime.datetime | None = None) -> Path:
    """``<logs_dir>/<command>_<UTC stamp>.log`` (microseconds keep two runs in one second apart)."""
    when = when or datetime.datetime.now(datetime.UTC)
    logs_dir.mkdir(parents=True, exist_ok=True)
    return logs_dir / f"{command}_{when.strftime('%Y%m%dT%H%M%S_%fZ')}.log"


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        return None  # not backed by a file descriptor (a test runner's buffer)


@contextlib.contextmanager
def captured_output(path: Path) -> Iterator[TextIO]:
    """Send stdout and stderr (Python streams and descriptors) to ``path`` inside the block; yield a stream
    that writes to the original standard output."""
    sys.stdout.flush()
    sys.stderr.flush()
    log = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in finally
    saved: list[tuple[int, int]] = []
    console: TextIO = sys.stdout
    try:
        for stream in (sys.stdout, sys.stderr):
            fd = _fileno(stream)
            if fd is None or any(fd == kept for kept, _ in saved):
                continue
            copy = os.dup(fd)
            saved.append((fd, copy))
            if stream is sys.stdout:
                console = os.fdopen(
                    os.dup(copy), "w", encoding=getattr(stream, "encoding", None) or "utf-8", buffering=1
                )
            os.dup2(log.fileno(), fd)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield console
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        if console is not sys.stdout:
            with contextlib.suppress(Exception):
                console.flush()
            # the console's descriptor is a duplicate of the original stdout; closing it leaves stdout open
            console.close()
        log.close()
