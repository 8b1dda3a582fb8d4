"""`mos dev` serves the Dagster UI, and a run launched through it materializes every asset.

This exercises what the CLI tests do not: the webserver and daemon, the queued run coordinator,
the multiprocess executor and the warehouse pool (limit 1) across step processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster_graphql import DagsterGraphQLClient

from mos_pipelines.settings import PROJECT_ROOT, Settings
from mos_pipelines.simulation import WorldConfig, generate_world
from tests.integration.conftest import use_home

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def restore_default_signals() -> None:
    """Children of a backgrounded shell inherit ignored SIGINT/SIGTERM; make them stoppable."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def wait_until_serving(port: int, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mos dev exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the UI did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def test_mos_dev_serves_the_ui_and_a_launched_run_materializes_everything(tmp_path: Path):
    settings = Settings(mos_home=tmp_path / "home")
    use_home(settings)
    generate_world(WorldConfig(seed=5, people=150, days=3), settings.mos_home)
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mos"), "dev", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env={**os.environ, "MOS_HOME": str(settings.mos_home)},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=restore_default_signals,
            start_new_session=True,
        )
    try:
        wait_until_serving(port, proc, log)
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        run_id = client.submit_job_execution(
            "full_build", repository_location_name="mos_pipelines", repository_name="__repository__"
        )
        deadline = time.monotonic() + 600
        status = client.get_run_status(run_id)
        while status.value not in ("SUCCESS", "FAILURE", "CANCELED") and time.monotonic() < deadline:
            time.sleep(2)
            status = client.get_run_status(run_id)
        assert status.value == "SUCCESS", log.read_text()[-4000:]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # only the process group we started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    import duckdb

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        sessions = con.execute("select count(*) from marts.fct_sessions").fetchall()[0][0]
        raw_files = con.execute("select count(*) from ops.file_ledger where status = 'loaded'").fetchall()[0][0]
    assert sessions > 0
    assert raw_files == len(list(settings.landing_dir.rglob("*.*")))
