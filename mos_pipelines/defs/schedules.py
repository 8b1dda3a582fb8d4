"""The daily full build: every asset the project defines, in dependency order."""

import dagster as dg

full_build_job = dg.define_asset_job(
    name="full_build",
    selection=dg.AssetSelection.all(),
    description="Materialize every asset: ingestion, dbt and everything downstream.",
)

daily_full_build = dg.ScheduleDefinition(
    name="daily_full_build",
    job=full_build_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
