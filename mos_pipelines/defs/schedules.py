"""The daily build: every asset the project defines except channel deliveries, in dependency order — of which each
tick launches only what changed (``mos_pipelines.defs.changes``): nothing changed, nothing runs."""

import dagster as dg

from mos_pipelines.defs.activation.gating import DELIVERY_TAG

BLUEPRINT_GROUP = "blueprints"  # mos_pipelines.defs.blueprint.GROUP (not imported: it loads the blueprint logic)

# Deliveries to channels are launched by their sensors behind the quality gates, never by a schedule; a
# blueprint's steps run from its own job (`mos blueprint run`).
FULL_BUILD_SELECTION = (
    dg.AssetSelection.all() - dg.AssetSelection.tag(*DELIVERY_TAG) - dg.AssetSelection.groups(BLUEPRINT_GROUP)
)

full_build_job = dg.define_asset_job(
    name="full_build",
    selection=FULL_BUILD_SELECTION,
    description="Materialize every asset: ingestion, dbt, models and sync models (deliveries run from sensors).",
)


@dg.schedule(
    name="daily_full_build",
    job=full_build_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 06:00 UTC: the assets of the full build whose inputs changed since they were last "
    "materialized, and everything downstream of them; a tick with nothing changed launches no run and says so.",
)
def daily_full_build(context: dg.ScheduleEvaluationContext):
    from mos_pipelines.defs import changes

    graph = context.repository_def.asset_graph if context.repository_def else None
    if graph is None:  # a context built without definitions (tests)
        from mos_pipelines.runner import load_definitions

        graph = load_definitions(prepare=False).resolve_asset_graph()
    plan = changes.plan_build(context.instance, graph)
    changes.report_unchanged(context.instance, graph, plan)
    if plan.nothing_to_do:
        return dg.SkipReason(plan.summary())
    return dg.RunRequest(asset_selection=changes.selection(plan), tags={"mos/launched_by": "schedule", **plan.tags()})
