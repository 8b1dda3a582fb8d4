"""``config/warehouse.yaml``: the engine the dbt project builds on (``engine``: DuckDB, or a local Spark — issue 21,
docs/SPARK.md; ``MOS_ENGINE`` or ``mos run --engine`` override it) and the DuckDB engine settings (threads, memory
limit, spill folder) of every connection mos makes. ``mos_pipelines.warehouse.duckdb_settings`` resolves them; dbt receives them through the
``MOS_DUCKDB_*`` variables ``mos_pipelines.settings.export_environment`` sets (``dbt_project/profiles.yml``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import field_validator

from mos_pipelines.configuration.base import Count, DomainSettings, Section, Text

# DuckDB's memory_limit: a number and a unit (KB..TB, KiB..TiB) or a percentage of the machine's memory.
MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(%|[KMGT]i?B)\s*$", re.IGNORECASE)


class DuckDBSettings(Section):
    threads: Count | None = None  # None: one per core
    memory_limit: Text = "80%"
    temp_directory: Text | None = None  # None: <warehouse>.tmp; relative: under MOS_HOME

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not MEMORY.match(value):
            raise ValueError('a size such as "6GB" or "512MiB", or a share of memory such as "80%"')
        return value.strip()


class SparkSettings(Section):
    # Where a Spark build runs the CRM matcher's SQL (blocking, comparisons, pattern counts, scoring): "duckdb" in
    # process on the driver, or "spark" (Spark SQL: spark/duckdb_sql.py) for pairs that outgrow one machine.
    identity_matching: Literal["duckdb", "spark"] = "duckdb"


class WarehouseSettings(DomainSettings):
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark: SparkSettings = SparkSettings()
    duckdb: DuckDBSettings
