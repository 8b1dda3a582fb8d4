"""``make dev``: the Dagster UI (``mos dev``) and the web app (``mos serve``) together; Ctrl-C or SIGTERM stops both.

A process started in the background by a non-interactive shell inherits SIGINT (and, under some supervisors,
SIGTERM) ignored, and ``dagster dev`` then cannot be stopped by them. Each child is started in a process group of
its own with the default handlers restored; on the way out this sends SIGINT to the Dagster group (it stops its
webserver and daemon cleanly) and SIGTERM to the web app's, then SIGKILL to whichever is still there after a grace
period. Only the process groups started here are signalled.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def restore_default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, preexec_fn=restore_default_signals, start_new_session=True)  # noqa: PLW1509


def _stop(children: list[tuple[subprocess.Popen, int]], grace: float = 20.0) -> None:
    for proc, sig in children:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for proc, _ in children:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group we started: leftovers of a child that has exited
        except ProcessLookupError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dagster-port", type=int, default=3000)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    mos = str(Path(sys.executable).with_name("mos"))
    dagster_url = f"http://{args.host}:{args.dagster_port}"
    dagster = _start([mos, "dev", "--host", args.host, "--port", str(args.dagster_port)])
    web = _start([mos, "serve", "--host", args.host, "--port", str(args.port), "--dagster-url", dagster_url])
    children: list[tuple[subprocess.Popen, int]] = [(dagster, signal.SIGINT), (web, signal.SIGTERM)]
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        while not stopping:
            finished = [p for p, _ in children if p.poll() is not None]
            if finished:  # one of them ended on its own: stop the other and report its code
                code = finished[0].returncode or 0
                break
            time.sleep(0.5)
    finally:
        _stop(children)
    return code


if __name__ == "__main__":
    sys.exit(main())
