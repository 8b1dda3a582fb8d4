"""One sensor per destination: launch its job when the sync model materialized behind passing gates.

The decision is ``mos_pipelines.defs.activation.gating.decide``; the cursor is the storage id of the last
materialization launched, the run key ``<destination>:<storage id>`` (two ticks, one run). A blocked
gate, a kill switch or nothing new is a SkipReason that says which, visible on the sensor's ticks.
"""

import json

import dagster as dg

from mos_pipelines.configuration import load_activation as load_config
from mos_pipelines.defs.activation.assets import CONFIG
from mos_pipelines.defs.activation.gating import decide
from mos_pipelines.defs.activation.jobs import activation_jobs, job_name


def _asset_graph(context: dg.SensorEvaluationContext):
    if context.repository_def is not None:
        return context.repository_def.asset_graph
    from mos_pipelines.runner import load_definitions  # a test context built without definitions

    return load_definitions(prepare=False).resolve_asset_graph()


def read_cursor(cursor: str | None) -> int | None:
    return json.loads(cursor).get("storage_id") if cursor else None


def build_sensor(name: str) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{job_name(name)}_sensor",
        job=activation_jobs[name],
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Launches `{job_name(name)}` when its sync model materialized and every blocking check "
        "upstream of it passed; says why when it does not.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        decision = decide(context.instance, _asset_graph(context), load_config(), name, read_cursor(context.cursor))
        if not decision.launch:
            return dg.SkipReason(decision.reason)
        request = dg.RunRequest(
            run_key=decision.run_key,
            tags={"mos/destination": name, "mos/sync_run_id": decision.materialization_run_id or ""},
        )
        return dg.SensorResult(run_requests=[request], cursor=json.dumps({"storage_id": decision.storage_id}))

    return _sensor


activation_sensors = [build_sensor(name) for name in CONFIG.destinations]
