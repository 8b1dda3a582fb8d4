"""Every mart of a Spark build against the DuckDB build of the same landing files: the same tables, columns and row
counts, the same keys, every numeric value within a relative 1e-9, text, booleans, dates and timestamps exactly.
What is allowed to differ is listed with its reason (RUN_STAMPS); a table not built on Spark is reported, not
compared silently."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Every schema a whole run writes but ops (the run's own bookkeeping: quality results per run, ledgers, file loads).
COMPARED_SCHEMAS = (
    "staging",
    "intermediate",
    "marts",
    "activation",
    "ml",
    "experiments",
    "insights",
    "decisions",
    "policy",
)
RELATIVE = 1e-9
ABSOLUTE = 1e-12  # for values that are zero on one engine and a rounding residue on the other
# Columns that record when a build ran, not what it computed: they differ between any two builds.
RUN_STAMPS = {("marts", "fct_customer_id_changes"): {"changed_at"}}
# The same across two whole runs (`mos run` on each engine): when ingestion loaded a row, which run did a step and
# when; the names are the project's own, each a wall clock or a run id. `reasons` of contact eligibility quotes the
# local time of the evaluation ("quiet hours … (local time 07:17)").
RUN_COLUMNS = frozenset(
    {
        "loaded_at",
        "last_event_loaded_at",
        "run_id",
        "fitted_at",
        "recorded_at",
        "decided_at",
        "evaluated_at",
        "local_time",
        "scored_at",
        "assigned_at",
        "first_used_at",
        "changed_at",
        "run_created_at",
        "called_at",
        "latency_ms",
    }
)
RUN_DERIVED = {
    # minted per run, from the run's time (an insight's created_at is its run; elsewhere created_at is data: an
    # order's, a contact's)
    ("insights", "insights"): {"insight_id", "created_at"},
    ("insights", "notification_rankings"): {"insight_id", "notification_id"},
    ("insights", "notifications"): {"insight_id", "notification_id", "created_at"},
    ("insights", "feedback"): {"insight_id", "notification_id", "created_at"},
    ("activation", "sync_slack__top_notifications"): {"notification_id", "created_at"},
    ("ops", "llm_calls"): {"call_id"},
    # dbt's snapshot bookkeeping: the run's time, and a hash of it
    ("marts", "dim_customers_snapshot"): {"dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to"},
}
# Columns compared after a rewrite that removes a run's wall clock from the text (DuckDB SQL over the column).
RUN_TEXT = {
    ("policy", "contact_eligibility"): {
        "reasons": r"list_transform(reasons, lambda r: regexp_replace(r, ' \(local time [0-9:]+\)', ''))"
    }
}


@dataclass
class TableComparison:
    schema: str
    table: str
    rows: int = 0
    key: tuple[str, ...] = ()
    differences: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the table was not compared

    @property
    def equal(self) -> bool:
        return not self.differences and self.skipped is None


def unique_keys(manifest_path: Path) -> dict[tuple[str, str], tuple[str, ...]]:
    """(schema, table) -> the column a `unique` test covers (the first, by name), from the dbt manifest."""
    manifest = json.loads(manifest_path.read_text())
    keys: dict[tuple[str, str], tuple[str, ...]] = {}
    for node in sorted(manifest["nodes"].values(), key=lambda n: n["unique_id"]):
        meta = node.get("test_metadata") or {}
        if node["resource_type"] != "test" or meta.get("name") != "unique" or not node.get("attached_node"):
            continue
        model = manifest["nodes"].get(node["attached_node"])
        column = meta.get("kwargs", {}).get("column_name") or node.get("column_name")
        if model and column and all(c.isidentifier() for c in [column]):
            keys.setdefault((model["schema"], model["alias"]), (column,))
    return keys


def _kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "time"
    values = series.dropna()
    if len(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.head(50)):
        return "number"  # decimals and object-typed numbers
    return "other"


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """One representation per value whatever the engine: numbers as float, times as naive UTC, dates as timestamps,
    missing values as None."""
    out = {}
    for name in frame.columns:
        series = frame[name]
        kind = _kind(series)
        if kind == "number":
            out[name] = pd.to_numeric(series, errors="coerce").astype("float64")
        elif kind == "time":
            values = pd.to_datetime(series)
            if getattr(values.dt, "tz", None) is not None:
                values = values.dt.tz_convert("UTC").dt.tz_localize(None)
            out[name] = values.astype("datetime64[us]")
        else:
            out[name] = series.map(_plain).astype(object)
    return pd.DataFrame(out, index=frame.index)


def _plain(value: Any) -> Any:
    import datetime

    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, datetime.datetime):
        return (
            pd.Timestamp(value).tz_localize(None)
            if value.tzinfo is None
            else pd.Timestamp(value).tz_convert("UTC").tz_localize(None)
        )
    if isinstance(value, datetime.date):
        return pd.Timestamp(value)
    if hasattr(value, "tolist"):  # numpy arrays of list columns
        return tuple(value.tolist())
    if isinstance(value, list):
        return tuple(value)
    return value


def _sort_key(frame: pd.DataFrame, key: tuple[str, ...]) -> pd.DataFrame:
    columns = list(key) or list(frame.columns)
    text = pd.DataFrame(
        {
            c: frame[c].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v!r:>40}")
            if frame[c].dtype != "float64"
            else frame[c].map(lambda v: "" if math.isnan(v) else f"{v:.6e}")
            for c in columns
        }
    )
    order = text.sort_values(columns, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def compare_frames(duck: pd.DataFrame, spark: pd.DataFrame, key: tuple[str, ...], ignore: set[str]) -> list[str]:
    """The differences between the DuckDB and the Spark rows of one table, as sentences (empty when equal)."""
    differences = []
    # Ignored columns play no part, not even in the row order of a table without a key (or keyed by one of them).
    key = tuple(k for k in key if k not in ignore)
    duck = duck[[c for c in duck.columns if c not in ignore]]
    spark = spark[[c for c in spark.columns if c not in ignore]]
    duck_columns, spark_columns = list(duck.columns), list(spark.columns)
    if duck_columns != spark_columns:
        differences.append(f"columns differ: DuckDB {duck_columns}, Spark {spark_columns}")
        common = [c for c in duck_columns if c in spark_columns]
        duck, spark = duck[common], spark[common]
    if len(duck) != len(spark):
        differences.append(f"row counts differ: DuckDB {len(duck)}, Spark {len(spark)}")
    duck, spark = _normalised(duck), _normalised(spark)
    if key and all(k in duck.columns for k in key):
        duck_keys = set(map(tuple, duck[list(key)].itertuples(index=False)))
        spark_keys = set(map(tuple, spark[list(key)].itertuples(index=False)))
        if duck_keys != spark_keys:
            only_duck, only_spark = sorted(duck_keys - spark_keys, key=repr), sorted(spark_keys - duck_keys, key=repr)
            differences.append(
                f"keys {key} differ: {len(only_duck)} only in DuckDB (e.g. {only_duck[:3]}), "
                f"{len(only_spark)} only in Spark (e.g. {only_spark[:3]})"
            )
            return differences
    if len(duck) != len(spark):
        return differences
    duck, spark = _sort_key(duck, key), _sort_key(spark, key)
    for name in duck.columns:
        if name in ignore:
            continue
        left, right = duck[name], spark[name]
        if left.isna().all() and right.isna().all():  # an all-null column: its type is each engine's guess
            continue
        if left.dtype == "float64" and right.dtype == "float64":
            both_null = left.isna() & right.isna()
            close = pd.Series(
                [
                    math.isclose(a, b, rel_tol=RELATIVE, abs_tol=ABSOLUTE)
                    for a, b in zip(left.fillna(0), right.fillna(0), strict=True)
                ]
            )
            bad = ~(both_null | (close & left.notna() & right.notna()))
        else:
            bad = pd.Series([not _same(a, b) for a, b in zip(left, right, strict=True)])
        if bad.any():
            at = int(bad.idxmax())
            row_key = {k: duck.at[at, k] for k in key} if key else {}
            differences.append(
                f"column {name}: {int(bad.sum())} of {len(bad)} rows differ, e.g. {row_key or f'row {at}'}: "
                f"DuckDB {left.iloc[at]!r}, Spark {right.iloc[at]!r}"
            )
    return differences


def _missing(value: Any) -> bool:
    return value is None or value is pd.NaT or value is pd.NA


def _same(a: Any, b: Any) -> bool:
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    if isinstance(a, str) and isinstance(b, str) and a != b and a[:1] in "{[" and b[:1] == a[:1]:
        try:  # a JSON document (evidence, metadata): numbers in it compared as numbers
            return _same_json(json.loads(a), json.loads(b))
        except ValueError:
            return False
    return bool(a == b)


def _same_json(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool | str):
        return math.isclose(a, b, rel_tol=RELATIVE, abs_tol=ABSOLUTE)
    return bool(a == b)


def compare_marts(
    warehouse: Path,
    spark: SparkSession,
    manifest_path: Path,
    schemas: tuple[str, ...] = ("marts", "activation"),
    not_built: dict[tuple[str, str], str] | None = None,
) -> list[TableComparison]:
    """Compare every table of `schemas` in the DuckDB warehouse with the Spark table of the same name."""
    keys = unique_keys(manifest_path)
    not_built = not_built or {}
    results = []
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_schema in "
            f"({', '.join('?' for _ in schemas)}) order by 1, 2",
            list(schemas),
        ).fetchall()
        for schema, table in tables:
            result = TableComparison(schema, table, key=keys.get((schema, table), ()))
            results.append(result)
            if (schema, table) in not_built:
                result.skipped = not_built[(schema, table)]
                continue
            if not spark.catalog.tableExists(f"`{schema}`.`{table}`"):
                result.differences.append("missing on Spark")
                continue
            duck = con.execute(f'select * from "{schema}"."{table}"').df()
            other = spark.table(f"`{schema}`.`{table}`").toPandas()
            result.rows = len(duck)
            result.differences = compare_frames(duck, other, result.key, RUN_STAMPS.get((schema, table), set()))
    finally:
        con.close()
    return results


def compare_warehouses(
    duckdb_build: Path,
    spark_build: Path,
    manifest_path: Path,
    schemas: tuple[str, ...],
    ignore: dict[tuple[str, str], set[str]] | None = None,
    not_built: dict[tuple[str, str], str] | None = None,
) -> list[TableComparison]:
    """Compare every table and view of `schemas` in two DuckDB warehouses built from the same landing files, one
    with the dbt project on DuckDB and one on Spark (`mos run --engine spark`: its dbt relations are views over
    Spark's files, the Python assets' tables its own). ``ignore``: (schema, table) -> columns that record when or
    in which run a step ran, beyond RUN_COLUMNS, RUN_DERIVED and RUN_TEXT."""
    keys = unique_keys(manifest_path)
    ignore, not_built = ignore or {}, not_built or {}
    results = []
    left = duckdb.connect(str(duckdb_build), read_only=True)
    right = duckdb.connect(str(spark_build), read_only=True)
    listing = (
        "select table_schema, table_name from information_schema.tables where table_schema in "
        f"({', '.join('?' for _ in schemas)}) order by 1, 2"
    )
    try:
        other = set(right.execute(listing, list(schemas)).fetchall())
        for schema, table in left.execute(listing, list(schemas)).fetchall():
            result = TableComparison(schema, table, key=keys.get((schema, table), ()))
            results.append(result)
            if (schema, table) in not_built:
                result.skipped = not_built[(schema, table)]
                continue
            if (schema, table) not in other:
                result.differences.append("missing from the Spark build's warehouse")
                continue
            rewrites = RUN_TEXT.get((schema, table), {})
            replace = f" replace ({', '.join(f'{sql} as {c}' for c, sql in rewrites.items())})" if rewrites else ""
            query = f'select *{replace} from "{schema}"."{table}"'
            duck, spark = left.execute(query).df(), right.execute(query).df()
            result.rows = len(duck)
            skip = set(RUN_COLUMNS) | RUN_DERIVED.get((schema, table), set()) | ignore.get((schema, table), set())
            result.differences = compare_frames(duck, spark, result.key, skip)
    finally:
        left.close()
        right.close()
    return results
