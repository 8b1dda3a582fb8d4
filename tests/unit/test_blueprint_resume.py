"""A blueprint run killed mid-way (SIGKILL while a step is writing) resumes and completes without repeating finished
steps or sends (issue 16, point 7). `mos blueprint run` runs as a subprocess on the small warehouse of
test_blueprint_execution.py; the documented test hook ``MOS_BLUEPRINT_TEST_SLEEP`` holds the nurture step inside
its write transaction (its send list written, its ``ops.step_runs`` row not yet) until the test kills the process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import duckdb

from mos_pipelines.blueprint import execution, store
from tests.unit.test_blueprint_execution import settings, world  # noqa: F401

__all__ = ["settings", "world"]
KILLED_STEP = "nurture_email"


def test_a_run_killed_mid_step_resumes_without_repeating_steps_or_sends(world, tmp_path, monkeypatch):  # noqa: F811
    from typer.testing import CliRunner

    from mos_pipelines.cli import app

    path, bp_path = world
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(path, home / "warehouse.duckdb")
    shutil.copytree(bp_path.parent, home / "blueprints")
    bid = bp_path.stem
    bp = store.validate(bp_path)
    mark = tmp_path / "sleeping"
    env = {
        **os.environ,
        "MOS_HOME": str(home),
        execution.TEST_SLEEP_ENV: f"{KILLED_STEP}=600",
        execution.TEST_SLEEP_MARK_ENV: str(mark),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mos_pipelines.cli", "blueprint", "run", bid],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 240
        while not mark.exists():
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the run never reached the nurture step"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    con = duckdb.connect(str(home / "warehouse.duckdb"))  # read-write: replays what the killed run committed
    before = con.execute("select step_id, run_id, status from ops.step_runs").fetchall()
    half = con.execute(
        "select count(*) from ops.blueprint_members where blueprint_id = ? and step_id = ?", [bid, KILLED_STEP]
    ).fetchall()[0][0]
    con.close()
    finished = {sid: run for sid, run, _ in before}
    assert KILLED_STEP not in finished and half == 0  # the half-written step left nothing behind
    assert len(finished) == len(before) and "segment_audience" in finished  # each finished step once
    assert {status for _, _, status in before} == {"ok"}

    calm = {k: v for k, v in env.items() if k not in (execution.TEST_SLEEP_ENV, execution.TEST_SLEEP_MARK_ENV)}
    resumed = subprocess.run(  # a subprocess, so a resume that waits forever (a held pool slot) times out
        [sys.executable, "-m", "mos_pipelines.cli", "blueprint", "resume", bid],
        env={**calm, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output
    pending = [s.id for s in execution.order(bp) if s.id not in finished]
    assert f"resuming {bid}: " in output and KILLED_STEP in pending
    assert "was killed: marked failed and its warehouse slot freed" in output  # else it waits for the slot forever

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    runs = con.execute("select step_id, run_id, status, rows, sends from ops.step_runs").fetchall()
    members = con.execute(
        "select count(*), count(distinct customer_id) from ops.blueprint_members where step_id = ?", [KILLED_STEP]
    ).fetchall()[0]
    con.close()
    assert sorted(r[0] for r in runs) == sorted(s.id for s in bp.steps)  # every step exactly once
    for sid, run, status, _, _ in runs:
        assert status == "ok", sid
        if sid in finished:
            assert run == finished[sid], f"{sid} was run again"
    nurture = next(r for r in runs if r[0] == KILLED_STEP)
    assert members == (nurture[3], nurture[3]) and nurture[3] > 0  # the send list written once
    assert nurture[4] == 4  # the four sends made since approval, counted once

    monkeypatch.setenv("MOS_HOME", str(home))
    again = CliRunner().invoke(app, ["blueprint", "resume", bid])
    assert again.exit_code == 0 and "nothing to resume" in again.output
