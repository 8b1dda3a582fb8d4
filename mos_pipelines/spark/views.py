"""Spark's tables in the DuckDB warehouse, as views over their parquet files: how the Python assets, the gates, the
CLI and the web app read a build made on Spark (`mos run --engine spark`) without a copy. DuckDB reads parquet in
process, streaming, so a table larger than memory still reads; what the Python assets write stays in DuckDB and goes
to Spark as a source before the dbt step that reads it (mos_pipelines.spark.raw_layer).

Spark writes timestamps as instants (INT96, or TIMESTAMP adjusted to UTC); the project's timestamps are naive UTC,
so an instant column reads through ``timezone('UTC', …)``, as the Python models' inputs do."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import duckdb

from mos_pipelines import warehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class SparkViewError(RuntimeError):
    """A Spark table has no readable files where its catalog says it is."""


def table_location(spark: SparkSession, schema: str, table: str) -> Path:
    """The folder Spark's catalog keeps ``schema.table``'s files in."""
    for row in spark.sql(f"describe formatted `{schema}`.`{table}`").collect():
        if row[0] == "Location":
            parsed = urlparse(row[1])
            return Path(unquote(parsed.path if parsed.scheme in ("file", "") else row[1]))
    raise SparkViewError(f"Spark table {schema}.{table} has no location (not a file-backed table)")


def is_view(spark: SparkSession, schema: str, table: str) -> bool:
    return str(spark.catalog.getTable(f"{schema}.{table}").tableType).upper() == "VIEW"


def snapshot_view(spark: SparkSession, schema: str, table: str, folder: Path) -> Path:
    """Write the rows of Spark's view ``schema.table`` as parquet under ``folder/<schema>/<table>`` (a view has no
    files of its own); the folder."""
    target = folder / schema / table
    spark.table(f"`{schema}`.`{table}`").write.mode("overwrite").parquet(str(target))
    return target


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def view_sql(con: duckdb.DuckDBPyConnection, folder: Path) -> str:
    """A select over the parquet files of one Spark table, instants as naive UTC timestamps."""
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise SparkViewError(f"no parquet files in {folder} (Spark writes one even for an empty table)")
    pattern = str(folder / "*.parquet").replace("'", "''")
    columns = con.execute(f"describe select * from read_parquet('{pattern}')").fetchall()
    items = ", ".join(
        f"timezone('UTC', {_quoted(name)}) as {_quoted(name)}"
        if str(kind).upper() == "TIMESTAMP WITH TIME ZONE"
        else _quoted(name)
        for name, kind, *_ in columns
    )
    return f"select {items} from read_parquet('{pattern}')"


HISTORY_SUFFIX = "__before_spark"


def link_relations(
    warehouse_path: Path,
    locations: dict[tuple[str, str], Path | None],
    keep: AbstractSet[tuple[str, str]] = frozenset(),
) -> None:
    """Make each ``(schema, table)`` a view of the same name in the DuckDB warehouse over the parquet files in its
    folder (a table of that name, from a DuckDB build, is replaced; one named in ``keep`` — a history a rebuild
    cannot recreate, identity's id log — is renamed ``<table>__before_spark`` instead of dropped); a ``None`` folder
    drops the DuckDB relation of that name, so nothing stale from an earlier DuckDB build is read. One
    transaction."""
    con = warehouse.connect(warehouse_path)
    try:
        kinds = dict(
            ((schema, name), kind)
            for schema, name, kind in con.execute(
                "select table_schema, table_name, table_type from information_schema.tables"
            ).fetchall()
        )
        with warehouse.transaction(con):
            for (schema, table), folder in sorted(locations.items()):
                name = f"{_quoted(schema)}.{_quoted(table)}"
                kind = kinds.get((schema, table))
                if kind == "BASE TABLE" and (schema, table) in keep:
                    aside = _quoted(table + HISTORY_SUFFIX)
                    con.execute(f"drop table if exists {_quoted(schema)}.{aside}")
                    con.execute(f"alter table {name} rename to {aside}")
                elif kind == "BASE TABLE":
                    con.execute(f"drop table {name}")
                elif kind == "VIEW" and folder is None:
                    con.execute(f"drop view {name}")
                if folder is not None:
                    con.execute(f"create schema if not exists {_quoted(schema)}")
                    con.execute(f"create or replace view {name} as {view_sql(con, folder)}")
    finally:
        con.close()
