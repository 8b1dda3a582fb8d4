"""The dbt Python models on Spark. dbt-spark runs Python models only on Databricks (its job API), not in `session`
mode, so a Spark build runs each of them here, unchanged: its inputs (the relations it refs) are read from Spark as
parquet into an in-memory DuckDB, the model's own `model(dbt, session)` runs against that DuckDB exactly as dbt-duckdb
runs it (the same relation API), and what it returns (and any table it writes beside itself) is written as parquet
and registered as a Spark table. The models pull their inputs into pandas in any case (`.df()`), so this costs one
parquet copy of those inputs; the scale limit is the models' own: one machine's memory."""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import duckdb

from mos_pipelines.identity.crm_matching import matching_connections

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MEMORY = "memory"  # the in-memory DuckDB's catalog name


@dataclass(frozen=True)
class PythonModelRun:
    name: str
    relation: str
    rows: int
    seconds: float
    also_written: tuple[str, ...]  # tables the model wrote beside itself (schema.table)


class _This:
    """`dbt.this` as dbt-duckdb gives it: database, schema, identifier; renders quoted."""

    def __init__(self, schema: str, identifier: str) -> None:
        self.database, self.schema, self.identifier = MEMORY, schema, identifier

    def __str__(self) -> str:
        return f'"{self.database}"."{self.schema}"."{self.identifier}"'

    __repr__ = __str__


class _Config:
    """`dbt.config`: callable (the model's own config call, already known from the manifest) and `.get`."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __call__(self, **_: Any) -> None:
        return None

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)


class _Dbt:
    """The `dbt` object a Python model receives, over the in-memory DuckDB its inputs were loaded into."""

    def __init__(self, con: duckdb.DuckDBPyConnection, node: dict, refs: dict[str, str], is_incremental: bool) -> None:
        self._con, self._refs = con, refs
        self.config = _Config(node.get("config", {}))
        self.this = _This(node["schema"], node["alias"])
        self.is_incremental = is_incremental

    def ref(self, *names: str, **_: Any) -> duckdb.DuckDBPyRelation:
        return self._con.table(self._refs[names[-1]])

    def source(self, source_name: str, table_name: str) -> duckdb.DuckDBPyRelation:
        return self._con.table(self._refs[f"{source_name}.{table_name}"])


def _quoted(schema: str, table: str) -> str:
    return f'"{MEMORY}"."{schema}"."{table}"'


def _load(spark: SparkSession, con: duckdb.DuckDBPyConnection, schema: str, table: str, scratch: Path) -> None:
    """Copy Spark's `schema.table` into the in-memory DuckDB as parquet; Spark's timestamps (instants) become DuckDB's
    naive UTC timestamps, the project's convention."""
    folder = scratch / f"{schema}.{table}"
    spark.table(f"`{schema}`.`{table}`").write.mode("overwrite").parquet(str(folder))
    files = str(folder / "*.parquet").replace("'", "''")
    columns = con.execute(f"describe select * from read_parquet('{files}')").fetchall()
    select = ", ".join(
        f'timezone(\'UTC\', "{name}") as "{name}"' if kind.upper() == "TIMESTAMP WITH TIME ZONE" else f'"{name}"'
        for name, kind, *_ in columns
    )
    con.execute(f'create schema if not exists "{schema}"').fetchall()
    con.execute(
        f"create or replace table {_quoted(schema, table)} as select {select} from read_parquet('{files}')"
    ).fetchall()


def _write(
    spark: SparkSession, con: duckdb.DuckDBPyConnection, query: str, schema: str, table: str, folder: Path, append: bool
) -> int:
    """Write `query`'s rows as a parquet file under `folder` and register `schema.table` on Spark over the folder
    (a new file beside the old ones when appending)."""
    if not append:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{len(list(folder.glob('part-*.parquet'))):05d}.parquet"
    quoted_path = str(path).replace("'", "''")
    con.execute(f"copy ({query}) to '{quoted_path}' (format parquet)").fetchall()
    rows = con.execute(f"select count(*) from read_parquet('{quoted_path}')").fetchall()[0]
    spark.sql(f"create database if not exists `{schema}`")
    if append and spark.catalog.tableExists(f"`{schema}`.`{table}`"):
        spark.sql(f"refresh table `{schema}`.`{table}`")
    else:
        spark.sql(f"drop table if exists `{schema}`.`{table}`")
        location = str(folder).replace("'", "\\'")
        spark.sql(f"create table `{schema}`.`{table}` using parquet location '{location}'")
    return int(rows[0]) if rows else 0


def identity_connection(spark: SparkSession) -> Callable[[], Any] | None:
    """What the CRM matcher opens inside a Spark build's Python model: a Spark SQL connection when
    ``config/warehouse.yaml`` says ``spark.identity_matching: spark``, else None (a DuckDB in process)."""
    from mos_pipelines import warehouse

    if warehouse.configuration().spark.identity_matching != "spark":
        return None

    def connect() -> Any:
        from mos_pipelines.spark.duckdb_sql import SparkConnection

        return SparkConnection(spark)

    return connect


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"mos_dbt_python_model_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the Python model {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_python_model(
    spark: SparkSession, manifest: dict, unique_id: str, project_dir: Path, folder: Path, full_refresh: bool
) -> PythonModelRun:
    """Run one dbt Python model (a manifest node) for Spark: inputs from Spark, the model's own code, output to
    Spark under `folder/<schema>/<table>`."""
    started = time.monotonic()
    node = manifest["nodes"][unique_id]
    schema, table = node["schema"], node["alias"]
    scratch = folder / "_inputs" / table
    shutil.rmtree(scratch, ignore_errors=True)
    con = duckdb.connect(":memory:")
    try:
        con.execute("set TimeZone = 'UTC'").fetchall()
        refs: dict[str, str] = {}
        for parent_id in node["depends_on"]["nodes"]:
            parent = manifest["nodes"].get(parent_id) or manifest["sources"][parent_id]
            p_schema, p_table = parent["schema"], parent.get("alias") or parent["identifier"]
            _load(spark, con, p_schema, p_table, scratch)
            key = f"{parent['source_name']}.{parent['name']}" if parent_id in manifest["sources"] else parent["name"]
            refs[key] = _quoted(p_schema, p_table)
        incremental = node["config"].get("materialized") == "incremental"
        exists = spark.catalog.tableExists(f"`{schema}`.`{table}`")
        is_incremental = incremental and exists and not full_refresh
        if is_incremental:
            _load(spark, con, schema, table, scratch)
        con.execute(f'create schema if not exists "{schema}"').fetchall()
        before = set(con.execute("select table_schema, table_name from information_schema.tables").fetchall())
        module = _module(project_dir / node["original_file_path"])
        with matching_connections(identity_connection(spark)):
            result = module.model(_Dbt(con, node, refs, is_incremental), con)
        if isinstance(result, duckdb.DuckDBPyRelation):
            result = result.df()
        con.register("_mos_model_result", result)
        rows = _write(
            spark, con, "select * from _mos_model_result", schema, table, folder / schema / table, is_incremental
        )
        con.unregister("_mos_model_result")
        written = []
        after = set(con.execute("select table_schema, table_name from information_schema.tables").fetchall())
        for extra_schema, extra_table in sorted(after - before):
            _write(
                spark,
                con,
                f"select * from {_quoted(extra_schema, extra_table)}",
                extra_schema,
                extra_table,
                folder / extra_schema / extra_table,
                append=False,
            )
            written.append(f"{extra_schema}.{extra_table}")
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return PythonModelRun(node["name"], f"{schema}.{table}", rows, time.monotonic() - started, tuple(written))
