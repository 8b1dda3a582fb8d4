"""Resources and the executor every domain shares: the ``$MOS_HOME`` folder with its DuckDB warehouse, and dbt.

Paths come from ``MOS_HOME`` (mos_pipelines.settings); dbt's profile reads the same variable, so dbt and the
Python assets always write one warehouse file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource, DbtProject
from dagster_duckdb import DuckDBResource
from packaging import version

from mos_pipelines import warehouse
from mos_pipelines.settings import DBT_PROJECT_DIR, Settings
from mos_pipelines.transform.project import dbt_executable

# dagster-dbt's view of the project: where its manifest is and how to run it (profiles.yml is in the project).
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class MosDbtCliResource(DbtCliResource):
    """dagster-dbt's CLI resource without two costs this project does not use, paid per run and per invocation.

    - ``dbt --version`` in a subprocess to learn the version (2.4 s of CPU a run at 100k, importing dbt once more):
      the executable is this environment's own dbt (``dbt_executable``), so the installed dbt-core's version is it.
      Another executable (one on PATH, the Fusion engine) is still asked.
    - A dbt adapter built in the Dagster process before every invocation (≈ 1 s each: the project's macros parsed),
      used only by ``fetch_row_counts`` / ``fetch_column_metadata``, which no step calls (row counts come from the
      warehouse after the run; DuckDB's one writer would make those fetches wait for dbt to finish anyway).
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable) == Path(sys.executable).parent / "dbt":
            return version.parse(installed_version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None


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
            "dbt": MosDbtCliResource(
                project_dir=str(dbt_project.project_dir),
                profiles_dir=str(dbt_project.profiles_dir),
                dbt_executable=dbt_executable(),
            ),
        },
    )
