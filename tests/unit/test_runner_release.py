"""A run whose `mos` process was killed stays "started" in the Dagster instance and keeps its claim on the
warehouse pool, so the next run would wait for that slot forever: the next launch marks it failed and frees the
slot; a run whose process is alive, or that `mos` did not launch, is left alone."""

from __future__ import annotations

import os
import socket
import subprocess

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun

from mos_pipelines.runner import HOST_TAG, PID_TAG, release_killed_runs
from mos_pipelines.settings import WAREHOUSE_POOL


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_slot_is_freed_and_live_or_foreign_runs_are_left_alone() -> None:
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
        host = socket.gethostname()
        runs = {
            "killed": {PID_TAG: str(_dead_pid()), HOST_TAG: host},
            "alive": {PID_TAG: str(os.getppid()), HOST_TAG: host},
            "daemon": {},  # launched by the daemon or the UI: Dagster watches it
            "elsewhere": {PID_TAG: str(_dead_pid()), HOST_TAG: host + "-other"},
        }
        for run_id, tags in runs.items():
            instance.add_run(
                DagsterRun(job_name="full_build", run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags=tags)
            )
        assert storage.claim_concurrency_slot(WAREHOUSE_POOL, "killed", "step_a").is_claimed
        assert not storage.claim_concurrency_slot(WAREHOUSE_POOL, "new", "step_b").is_claimed  # waits forever

        released, alive = release_killed_runs(instance)

        assert released == ["killed"] and alive == ["alive"]
        status = {r: instance.get_run_by_id(r).status for r in runs}
        assert status["killed"] == dg.DagsterRunStatus.FAILURE
        assert {status[r] for r in ("alive", "daemon", "elsewhere")} == {dg.DagsterRunStatus.STARTED}
        assert storage.claim_concurrency_slot(WAREHOUSE_POOL, "new", "step_b").is_claimed  # the waiting step runs
        assert release_killed_runs(instance) == ([], ["alive"])  # nothing left to release
