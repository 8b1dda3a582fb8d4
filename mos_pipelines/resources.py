"""Dagster resources shared by every domain: the warehouse, the landing zone and dbt."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb

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
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse, closed afterwards (DuckDB allows one writer process)."""
        con = warehouse.connect(self.warehouse_path, read_only=read_only)
        try:
            yield con
        finally:
            con.close()
