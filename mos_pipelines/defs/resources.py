"""Resources and the executor every domain shares. Paths come from ``MOS_HOME`` (mos_pipelines.settings)."""

import dagster as dg
from dagster_dbt import DbtCliResource

from mos_pipelines.resources import MosHome
from mos_pipelines.transform.project import dbt_executable, dbt_project


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        # Every step writes the one DuckDB file, so steps cannot run in parallel anyway: run them in
        # one process and skip a process start per step. The warehouse pool still serialises runs.
        executor=dg.in_process_executor,
        resources={
            "mos": MosHome(mos_home=dg.EnvVar("MOS_HOME")),
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
        }
    )
