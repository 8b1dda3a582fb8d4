"""Nothing changed → nothing runs, through the real daily schedule, job, dbt and Dagster instance (issue 20).

"A step that writes" here: any step of the full-build job that starts (``STEP_START``) — every step of that job
materializes assets or evaluates their checks, so a run that starts no step writes nothing — and any asset
materialization. The schedule's tick is evaluated as the daemon does (``evaluate_tick`` with the definitions) and
its run request executed with its asset selection and tags, in this process.
"""

from __future__ import annotations

import dagster as dg
import pytest

from mos_pipelines.runner import load_definitions, run_assets
from tests.integration.conftest import World, use_home

pytestmark = pytest.mark.integration


def tick(world: World) -> tuple[dg.Definitions, dg.DagsterInstance, object]:
    use_home(world.settings)
    definitions = load_definitions(prepare=False)
    instance = dg.DagsterInstance.get()
    schedule = definitions.resolve_schedule_def("daily_full_build")
    context = dg.build_schedule_context(instance=instance, repository_def=definitions.get_repository_def())
    return definitions, instance, schedule.evaluate_tick(context)


def writing_events(instance: dg.DagsterInstance, run_ids: list[str]) -> list[str]:
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.ASSET_MATERIALIZATION}
    found = []
    for run_id in run_ids:
        for kind in kinds:
            records = instance.get_records_for_run(run_id, of_type=kind, limit=100000).records
            found += [f"{run_id[:8]} {kind.value} {r.event_log_entry.dagster_event.step_key}" for r in records]
    return found


def test_the_daily_schedule_twice_with_no_new_data_launches_no_step_that_writes(world_copy: World):
    # one new landing file: the first tick launches its ingestion and what is downstream of it, nothing else
    platform = sorted((world_copy.settings.landing_dir / "ad_spend").iterdir())[0]
    first_file = sorted(platform.glob("*.csv"))[0]
    header, row = first_file.read_text().splitlines()[:2]
    fields = row.split(",")
    fields[0] = "2026-01-02"  # a second spend line of an existing day and ad group: a change in the marts
    fields[5] = fields[5] + "_late"
    (platform / "late_upload.csv").write_text(f"{header}\n{','.join(fields)}\n")

    definitions, instance, first = tick(world_copy)
    assert first.skip_message is None and len(first.run_requests) == 1, first.skip_message
    request = first.run_requests[0]
    selected = {k.to_user_string() for k in request.asset_selection}
    assert {"raw/ad_spend", "staging/stg_ad_platforms__ad_spend", "marts/fct_ad_spend_daily"} <= selected
    assert "marts/fct_channel_performance" in selected and "experiments/budget_allocations" in selected
    # not downstream of ad spend: left as they are
    assert not {"raw/events", "raw/orders", "marts/fct_events", "marts/dim_customers", "ml/lookalike_scores"} & selected
    assert request.tags["mos/fp/landing.ad_spend"] and request.tags["mos/launched_by"] == "schedule"

    result = definitions.resolve_job_def("full_build").execute_in_process(
        instance=instance, asset_selection=list(request.asset_selection), tags=request.tags, raise_on_error=False
    )
    assert result.success
    first_run = result.run_id
    assert writing_events(instance, [first_run])  # the first run wrote: the test can see writes
    with world_copy.connect() as con:
        lines = con.execute("select count(*) from raw.ad_spend where ad_group_id like '%_late'").fetchone()[0]
    assert lines == 1

    # the second tick, no new data: no run, and the reason
    runs_before = [r.run_id for r in instance.get_runs()]
    _, _, second = tick(world_copy)
    assert not second.run_requests
    assert second.skip_message and second.skip_message.startswith("nothing changed"), second.skip_message
    new_runs = [r.run_id for r in instance.get_runs() if r.run_id not in runs_before]
    assert new_runs == [] and writing_events(instance, new_runs) == []
    # the Python assets left out say why, on their page
    observation = instance.fetch_observations(dg.AssetKey(["experiments", "budget_allocations"]), limit=1).records[0]
    reason = observation.asset_observation.metadata["skipped"].value
    assert reason == f"inputs unchanged since run {first_run}"

    # `mos run` behaves as the schedule
    outcome = run_assets(None)
    assert outcome.success and not outcome.launched and outcome.plan is not None
    assert outcome.plan.nothing_to_do and not outcome.plan.blocked
    assert [r.run_id for r in instance.get_runs() if r.run_id not in runs_before] == []
