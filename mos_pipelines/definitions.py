"""The one composition root: every module under ``mos_pipelines/defs`` contributes definitions."""

from pathlib import Path

import dagster as dg

from mos_pipelines.settings import configure_environment

configure_environment()  # MOS_HOME/DAGSTER_HOME and telemetry off, before dbt or Dagster read them


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
