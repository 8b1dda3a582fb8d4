"""Resources and the executor every domain shares: the ``$MOS_HOME`` folder with its DuckDB warehouse, and dbt.

Paths come from ``MOS_HOME`` (mos_pipelines.settings); dbt's profile reads the same variable, so dbt and the
Python assets always write one warehouse file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource, DbtProject
from dagster_duckdb import DuckDBResource

from mos_pipelines import warehouse
from mos_pipelines.settings import DBT_PROJECT_DIR, Settings
from mos_pipelines.transform.project import dbt_executable

# dagster-dbt's view of the project: where its manifest is and how to run it (profiles.yml is in the project).
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class MosHome(dg.ConfigurableResource):
    """The ``$MOS_HOME`` folder: landing files, truth, reports and the DuckDB warehouse.

    The one knob is ``MOS_HOME``; dbt's profile reads the same variable, so dbt and the Python
    assets always write one warehouse file.
    """

    mos_home: str

    @property
    def paths(self) -> Settings:
        """Where everything under this ``MOS_HOME`` lives (the same layout the command line resolves)."""
        return Settings(mos_home=Path(self.mos_home))

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection with the engine settings of ``config/warehouse.yaml``, closed afterwards.
        Retries while another process holds the file lock (dagster-duckdb's backoff), then fails with a message
        naming the file."""
        self.paths.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        opening = DuckDBResource(database=str(self.paths.warehouse_path)).get_connection()
        try:
            con = opening.__enter__()
        except (duckdb.Error, RuntimeError) as exc:
            raise warehouse.open_error(self.paths.warehouse_path, exc) from exc
        try:
            warehouse.apply_settings(con, warehouse.duckdb_settings(self.paths.warehouse_path))
            yield con
        finally:
            opening.__exit__(None, None, None)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        # Every step writes the one DuckDB file, so steps cannot run in parallel anyway: run them in
        # one process and skip a process start per step. The warehouse pool still serialises runs.
        executor=dg.in_process_executor,
        resources={
            "mos": MosHome(mos_home=dg.EnvVar("MOS_HOME")),
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
        },
    )
