"""The raw layer on Spark: every table the dbt project reads as a source (raw landing tables, the ops and model
tables the Python assets write) copied from the DuckDB warehouse to parquet and registered as a Spark table over
those files. The simplest honest warehouse interface for now: ingestion and the Python assets keep writing DuckDB;
dbt reads the same rows on Spark. A source table DuckDB does not hold is dropped on Spark too (optional_source then
reads it as empty on both engines)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# DuckDB types that parquet or Spark do not carry, as the type they are exported as.
EXPORT_TYPES = {"JSON": "VARCHAR", "UUID": "VARCHAR", "HUGEINT": "DECIMAL(38, 0)", "UBIGINT": "DECIMAL(20, 0)"}


@dataclass(frozen=True)
class ExportedTable:
    schema: str
    table: str
    rows: int | None  # None: DuckDB does not hold it (dropped on Spark)


def source_tables(manifest: dict, read_by: set[str] | None = None) -> list[tuple[str, str]]:
    """(schema, table) of every source the dbt manifest declares (or that the nodes ``read_by`` names read), sorted."""
    sources = manifest["sources"]
    if read_by is not None:
        nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
        read = {p for u in read_by if u in nodes for p in nodes[u].get("depends_on", {}).get("nodes", [])}
        sources = {u: s for u, s in sources.items() if u in read}
    return sorted({(s["schema"], s["identifier"]) for s in sources.values()})


def _select_list(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    parts = []
    for name, data_type in columns:
        quoted = '"' + name.replace('"', '""') + '"'
        target = EXPORT_TYPES.get(data_type.upper())
        parts.append(f"cast({quoted} as {target}) as {quoted}" if target else quoted)
    return ", ".join(parts)


def export_sources(
    warehouse: Path, spark: SparkSession, tables: list[tuple[str, str]], folder: Path
) -> list[ExportedTable]:
    """Copy each (schema, table) DuckDB holds to `folder/<schema>/<table>/data.parquet` and (re)register it on Spark
    as `<schema>.<table>` over that folder; drop the Spark table of one DuckDB does not hold."""
    exported = []
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        held = {
            (s, t) for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        }
        for schema, table in tables:
            spark.sql(f"create database if not exists `{schema}`")
            spark.sql(f"drop table if exists `{schema}`.`{table}`")
            target = folder / schema / table
            shutil.rmtree(target, ignore_errors=True)
            if (schema, table) not in held:
                exported.append(ExportedTable(schema, table, None))
                continue
            target.mkdir(parents=True)
            select = _select_list(con, schema, table)
            path = str(target / "data.parquet").replace("'", "''")
            con.execute(f'copy (select {select} from "{schema}"."{table}") to \'{path}\' (format parquet)').fetchall()
            rows = con.execute(f'select count(*) from "{schema}"."{table}"').fetchall()[0]
            location = str(target).replace("'", "\\'")
            spark.sql(f"create table `{schema}`.`{table}` using parquet location '{location}'")
            exported.append(ExportedTable(schema, table, int(rows[0]) if rows else 0))
    finally:
        con.close()
    return exported
