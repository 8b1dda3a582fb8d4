"""The daily full build: every asset the project defines except channel deliveries, in dependency order."""

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

daily_full_build = dg.ScheduleDefinition(
    name="daily_full_build",
    job=full_build_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
