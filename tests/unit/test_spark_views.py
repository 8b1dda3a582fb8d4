"""DuckDB views over a Spark table's parquet files (no Spark needed: the files are written here as Spark writes them):
instants read as naive UTC, a DuckDB table of the same name from an earlier DuckDB build is replaced, a relation that
is no longer linked is dropped rather than read stale, and a folder without files is an error naming it."""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import pytest

from mos_pipelines.spark.views import SparkViewError, link_relations


def _spark_like_table(folder: Path) -> Path:
    """A folder of parquet parts with an instant column (TIMESTAMP adjusted to UTC), as Spark writes them."""
    folder.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("set TimeZone = 'Europe/Berlin'")
    for part in range(2):
        con.execute(
            f"copy (select {part} as id, timestamptz '2026-03-29 01:30:00+00' + interval {part} hour as seen_at) "
            f"to '{folder}/part-{part:05d}.snappy.parquet' (format parquet)"
        )
    (folder / "_SUCCESS").write_text("")
    return folder


def test_a_spark_table_becomes_a_view_with_naive_utc_times_replacing_duckdbs_table(tmp_path: Path):
    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema marts; create table marts.t as select 9 as id")
    con.execute("create view marts.gone as select 1 as x")
    con.close()
    folder = _spark_like_table(tmp_path / "spark" / "warehouse" / "marts.db" / "t")
    link_relations(warehouse, {("marts", "t"): folder, ("marts", "gone"): None})
    con = duckdb.connect(str(warehouse), read_only=True)
    rows = con.execute("select id, seen_at from marts.t order by id").fetchall()
    kinds = dict(con.execute("select table_name, table_type from information_schema.tables").fetchall())
    con.close()
    assert rows == [(0, datetime.datetime(2026, 3, 29, 1, 30)), (1, datetime.datetime(2026, 3, 29, 2, 30))]
    assert kinds == {"t": "VIEW"}


def test_a_folder_without_parquet_files_is_an_error_naming_it(tmp_path: Path):
    warehouse = tmp_path / "warehouse.duckdb"
    empty = tmp_path / "spark" / "empty"
    empty.mkdir(parents=True)
    with pytest.raises(SparkViewError, match=str(empty)):
        link_relations(warehouse, {("marts", "empty"): empty})


def test_a_history_duckdb_cannot_rebuild_is_kept_aside_not_dropped(tmp_path: Path):
    """Identity's id log (`full_refresh=False`): the DuckDB table Spark's version replaces is renamed, with its rows."""
    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema marts; create table marts.log as select 1 as run_number")
    con.close()
    folder = _spark_like_table(tmp_path / "spark" / "log")
    link_relations(warehouse, {("marts", "log"): folder}, keep={("marts", "log")})
    con = duckdb.connect(str(warehouse), read_only=True)
    kinds = dict(con.execute("select table_name, table_type from information_schema.tables").fetchall())
    kept = con.execute("select * from marts.log__before_spark").fetchall()
    con.close()
    assert kinds == {"log": "VIEW", "log__before_spark": "BASE TABLE"}
    assert kept == [(1,)]
