"""Whether a destination may be delivered now: the decision every activation sensor takes.

A destination's job is launched when its sync model has a materialization not launched before and
every blocking check on that model and on all of its ancestors passed:

- a check's state is its latest execution: passed, failed, still running, or did not complete (its
  run failed before the check ran); an execution skipped in a successful run (its asset was not
  materialized) falls back to the check's latest completed evaluation; a check never evaluated blocks;
- the checks on the sync model itself must have run for the materialization being delivered.

The run key is ``<destination>:<storage id of the sync model's materialization>``: two ticks that see
the same materialization ask for the same run, which Dagster launches once; the sensor's cursor keeps
the last storage id launched. Reads the Dagster instance; defines no Dagster objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from mos_pipelines.configuration.activation import ActivationSettings

DELIVERY_TAG = ("mos/activation", "delivery")  # tag of every delivery asset (kept out of the full build)
MAX_LISTED = 5


def delivery_key(destination: str) -> dg.AssetKey:
    return dg.AssetKey(["activation", f"delivery__{destination}"])


def sync_key(config: ActivationSettings, destination: str) -> dg.AssetKey:
    return dg.AssetKey(config.destination(destination).sync_model.split("."))


@dataclass(frozen=True)
class GateProblem:
    check: str  # "asset/key:check_name"
    state: str  # failed | did_not_complete | in_progress | never_evaluated | stale
    run_id: str | None = None
    detail: str | None = None

    def describe(self) -> str:
        where = f" in run {self.run_id[:8]}" if self.run_id else ""
        words = {
            "failed": "failed",
            "did_not_complete": "did not complete",
            "in_progress": "is still running",
            "never_evaluated": "was never evaluated",
            "stale": "has not run on the latest materialization",
        }
        return f"{self.check} {words[self.state]}{where}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Decision:
    launch: bool
    reason: str
    run_key: str | None = None
    storage_id: int | None = None
    materialization_run_id: str | None = None
    problems: list[GateProblem] = field(default_factory=list)


def blocking_checks(asset_graph, key: dg.AssetKey) -> list[dg.AssetCheckKey]:
    """Blocking checks on ``key`` and on every asset upstream of it."""
    assets = asset_graph.get_ancestor_asset_keys(key, include_self=True)
    return sorted(
        (c for c in asset_graph.asset_check_keys if c.asset_key in assets and asset_graph.get_check_spec(c).blocking),
        key=lambda c: (c.asset_key.to_user_string(), c.name),
    )


def _detail(record: AssetCheckExecutionRecord) -> str | None:
    evaluation = record.evaluation
    if evaluation is None:
        return None
    parts = []
    for name in ("observed", "threshold", "note"):
        value = evaluation.metadata.get(name)
        if value is not None:
            parts.append(f"{name} {getattr(value, 'value', value)}")
    return ", ".join(parts) or None


def check_problems(
    instance: dg.DagsterInstance, asset_graph, key: dg.AssetKey, materialization_run_id: str | None
) -> list[GateProblem]:
    """Blocking checks upstream of (and on) ``key`` that do not allow delivery, most serious first."""
    keys = blocking_checks(asset_graph, key)
    storage = instance.event_log_storage
    latest = storage.get_latest_asset_check_execution_by_key(keys) if keys else {}
    runs: dict[str, dg.DagsterRun | None] = {}
    problems = []
    completed_statuses = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
    for check_key in keys:
        name = f"{check_key.asset_key.to_user_string()}:{check_key.name}"
        record = latest.get(check_key)
        if record is not None and record.status == AssetCheckExecutionRecordStatus.PLANNED:
            if record.run_id not in runs:
                runs[record.run_id] = instance.get_run_by_id(record.run_id)
            run = runs[record.run_id]
            if run is not None and not run.is_finished:
                problems.append(GateProblem(name, "in_progress", record.run_id))
                continue
            if run is not None and run.status == dg.DagsterRunStatus.FAILURE:
                problems.append(GateProblem(name, "did_not_complete", record.run_id))
                continue
            history = storage.get_asset_check_execution_history(check_key, limit=1, status=completed_statuses)
            record = history[0] if history else None
        if record is None:
            problems.append(GateProblem(name, "never_evaluated"))
        elif record.status == AssetCheckExecutionRecordStatus.FAILED:
            problems.append(GateProblem(name, "failed", record.run_id, _detail(record)))
        elif check_key.asset_key == key and materialization_run_id and record.run_id != materialization_run_id:
            problems.append(GateProblem(name, "stale", record.run_id))
    order = {"failed": 0, "did_not_complete": 1, "never_evaluated": 2, "stale": 3, "in_progress": 4}
    return sorted(problems, key=lambda p: order[p.state])


def decide(
    instance: dg.DagsterInstance,
    asset_graph,
    config: ActivationSettings,
    destination: str,
    last_storage_id: int | None,
    require_new: bool = True,
) -> Decision:
    """Launch or skip, with the reason. ``require_new=False`` (a manual run) delivers the latest
    materialization even when it was launched before (the ledger makes that a no-op if nothing changed)."""
    channel = config.destination(destination).channel
    if not config.enabled(channel):
        return Decision(False, f"kill switch: channel {channel} is disabled in {config.source}")
    key = sync_key(config, destination)
    record = instance.get_latest_materialization_event(key)
    run_id = record.run_id if record else None
    problems = check_problems(instance, asset_graph, key, run_id)
    if problems:
        listed = "; ".join(p.describe() for p in problems[:MAX_LISTED])
        more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        blocked = [p for p in problems if p.state != "in_progress"]
        verb = "blocked" if blocked else "waiting"
        return Decision(
            False,
            f"{destination} {verb} by blocking checks upstream of {key.to_user_string()}: {listed}{more}",
            problems=problems,
            materialization_run_id=run_id,
        )
    if record is None:
        return Decision(False, f"{key.to_user_string()} has never been materialized")
    records = instance.fetch_materializations(key, limit=1)
    storage_id = records.records[0].storage_id if records.records else None
    run = instance.get_run_by_id(run_id) if run_id else None
    if run is not None and not run.is_finished:
        return Decision(
            False,
            f"waiting for run {run_id[:8]} that materialized {key.to_user_string()} to finish",
            storage_id=storage_id,
            materialization_run_id=run_id,
        )
    if require_new and last_storage_id is not None and storage_id is not None and storage_id <= last_storage_id:
        return Decision(
            False,
            f"no new materialization of {key.to_user_string()} since the last launch (storage id {last_storage_id})",
            storage_id=storage_id,
            materialization_run_id=run_id,
        )
    return Decision(
        True,
        f"{key.to_user_string()} materialized in run {run_id[:8] if run_id else '?'} and every "
        f"blocking check upstream passed",
        run_key=f"{destination}:{storage_id}",
        storage_id=storage_id,
        materialization_run_id=run_id,
    )
