"""Opening the DuckDB warehouse with errors a user can act on."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    import pandas as pd

SCHEMAS = ("raw", "staging", "intermediate", "marts", "ml", "experiments", "insights", "activation", "ops")


class WarehouseError(RuntimeError):
    """The warehouse file cannot be opened (locked by another process, corrupt, or missing)."""


def open_error(path: Path, exc: Exception) -> WarehouseError:
    """Turn DuckDB's low-level open failure into a message naming the file and what to do."""
    if "lock" in str(exc).lower():
        return WarehouseError(
            f"The warehouse {path} is locked by another process (DuckDB allows one writer). "
            "Wait for the running job to finish or stop it, then retry."
        )
    return WarehouseError(
        f"The warehouse {path} is unreadable ({exc}). If it was written by another DuckDB "
        "version or is damaged, move it aside and run `mos run` to rebuild it from landing."
    )


def _config_files_state() -> tuple[tuple[str, int], ...]:
    """Each file ``config/warehouse.yaml`` is read from, with its modification time: the cache key of
    ``_configuration``."""
    from mos_pipelines.configuration.registry import DOMAINS

    domain = DOMAINS["warehouse"]
    files = [domain.file, *([Path(os.environ[domain.env])] if os.environ.get(domain.env) else [])]
    return tuple((str(f), f.stat().st_mtime_ns if f.exists() else -1) for f in files)


@functools.lru_cache(maxsize=8)
def _configuration(*files: tuple[str, int]):  # -> WarehouseSettings (imported lazily: configuration imports settings)
    """The validated ``config/warehouse.yaml``, read once per state of its files: every connection asks (the web app
    opens the warehouse per request), and reading and validating the YAML costs ~5 ms."""
    from mos_pipelines.configuration import load_warehouse

    return load_warehouse()


ENGINES = ("duckdb", "spark")
ENGINE_ENV = "MOS_ENGINE"


def engine() -> str:
    """The engine the dbt project builds on: ``MOS_ENGINE`` (``mos run --engine`` sets it) when set, else
    ``config/warehouse.yaml``'s ``engine``. DuckDB stays the warehouse the Python assets, the CLI and the web app
    open either way (on Spark its dbt relations are views over Spark's files: mos_pipelines.spark.views)."""
    chosen = os.environ.get(ENGINE_ENV, "").strip().lower()
    if chosen:
        if chosen not in ENGINES:
            raise WarehouseError(f"{ENGINE_ENV}={chosen!r}: the engine is one of {', '.join(ENGINES)}")
        return chosen
    return str(configuration().engine)


def configuration():  # -> WarehouseSettings
    """``config/warehouse.yaml`` (and the override file), validated, read again only when a file changed."""
    return _configuration(*_config_files_state())


def duckdb_settings(path: Path) -> dict[str, str]:
    """The engine settings (``config/warehouse.yaml`` ``duckdb``) of a connection to the warehouse at ``path``:
    threads (default one per core), memory_limit, temp_directory (default ``<path>.tmp``; a relative one is under
    the warehouse's folder). dbt gets the same values through ``MOS_DUCKDB_*`` (``settings.export_environment``)."""
    engine = configuration().duckdb
    temp = Path(engine.temp_directory).expanduser() if engine.temp_directory else Path(f"{path}.tmp")
    if not temp.is_absolute():
        temp = path.parent / temp
    return {
        "threads": str(engine.threads or os.cpu_count() or 1),
        "memory_limit": engine.memory_limit,
        "temp_directory": str(temp),
    }


def apply_settings(con: duckdb.DuckDBPyConnection, values: dict[str, str]) -> None:
    """``SET`` each engine setting on an open connection: given at connect time instead, a second connection to the
    same file in this process with other settings would fail. The spill folder is set only when it differs: DuckDB
    refuses to switch it, even to itself, once something has spilled there."""
    for key, value in values.items():
        if key == "temp_directory" and scalar(con, "select current_setting('temp_directory')") == value:
            continue
        con.execute(f"set {key} = '{value.replace(chr(39), chr(39) * 2)}'")


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with the engine settings of ``config/warehouse.yaml``, turning DuckDB's errors into a
    message naming the file."""
    if read_only and not path.exists():
        raise WarehouseError(f"No warehouse at {path}. Run `mos run` first to build it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    values = duckdb_settings(path)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise open_error(path, exc) from exc
    try:
        apply_settings(con, values)
    except duckdb.Error:
        con.close()
        raise
    return con


_IN_TRANSACTION: set[int] = set()  # connections inside ``transaction`` (by id)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block in one transaction: committed when it ends, rolled back when it raises. Inside another
    ``transaction`` on the same connection the block joins the outer one (DuckDB does not nest transactions),
    so several writers can be made one atomic step (``mos policy apply``)."""
    if id(con) in _IN_TRANSACTION:
        yield
        return
    con.execute("begin transaction")
    _IN_TRANSACTION.add(id(con))
    try:
        yield
    except BaseException:
        _IN_TRANSACTION.discard(id(con))
        con.execute("rollback")
        raise
    _IN_TRANSACTION.discard(id(con))
    con.execute("commit")


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, replace: bool = False) -> None:
    """Insert the frame's rows into ``table`` by column name (``insert or replace`` with ``replace``)."""
    con.register("_frame_rows", frame)
    try:
        con.execute(f"insert {'or replace ' if replace else ''}into {table} by name select * from _frame_rows")
    finally:
        con.unregister("_frame_rows")


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """The single value of a query. Fetches everything: DuckDB 2 keeps a half-read result open,
    which blocks later ``register`` calls on the same connection."""
    return con.execute(sql, params or []).fetchall()[0][0]


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple[Any, ...]:
    """The first row of a query that returns one (an aggregate); fetches everything, as ``scalar`` does."""
    return con.execute(sql, params or []).fetchall()[0]


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether ``schema.table`` exists (a table or a view)."""
    return bool(
        scalar(
            con,
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        )
    )


def columns_of(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """The column names of ``schema.table`` in order (empty when it does not exist)."""
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows]
