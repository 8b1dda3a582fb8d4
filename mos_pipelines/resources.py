"""Dagster resources shared by every domain: the warehouse, the landing zone and dbt."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from mos_pipelines import warehouse


class MosHome(dg.ConfigurableResource):
    """The ``$MOS_HOME`` folder: landing files, truth, reports and the DuckDB warehouse.

    The one knob is ``MOS_HOME``; dbt's profile reads the same variable, so dbt and the Python
    assets always write one warehouse file.
    """

    mos_home: str

    @property
    def root(self) -> Path:
        return Path(self.mos_home)

    @property
    def landing_dir(self) -> Path:
        return self.root / "landing"

    @property
    def truth_dir(self) -> Path:
        return self.root / "truth"

    @property
    def warehouse_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection, closed afterwards. Retries while another process holds the
        file lock (dagster-duckdb's backoff), then fails with a message naming the file."""
        self.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        opening = DuckDBResource(database=str(self.warehouse_path)).get_connection()
        try:
            con = opening.__enter__()
        except (duckdb.Error, RuntimeError) as exc:
            raise warehouse.open_error(self.warehouse_path, exc) from exc
        try:
            yield con
        finally:
            opening.__exit__(None, None, None)
