"""The one composition root. Importing it does nothing; Dagster calls ``defs`` to build the definitions."""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from mos_pipelines.defs import build_definitions
    from mos_pipelines.settings import export_environment

    export_environment()  # MOS_HOME / DAGSTER_HOME and telemetry off, for the resources and dbt (no file written)
    return build_definitions()
