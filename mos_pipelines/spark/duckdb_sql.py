"""A DuckDB-connection-shaped front to Spark SQL, so the identity matcher's SQL (``identity.matching``,
``identity.resolve``, ``identity.crm_matching``) runs on Spark unchanged: one source of SQL, written for DuckDB,
transpiled statement by statement with sqlglot.

What the matcher uses of a DuckDB connection, and what it becomes here:

- ``execute(sql, params)``: each statement parsed as DuckDB and written as Spark SQL; ``?`` bound as literals.
  ``create or replace temp table t as <query>`` is the query run and kept as a local checkpoint (executor memory,
  spilled to disk), then registered as temp view ``t`` (the query may read the table it replaces); ``drop table t``
  frees it; ``describe t`` lists its columns. Queries return a result with ``df()`` (pandas, through Arrow), ``fetchall()``
  and ``fetchone()``.
- ``register(name, frame)`` / ``unregister(name)``: a pandas frame as a temp view over a parquet copy (the copies
  are deleted by ``close()``).

Where DuckDB's SQL is not Spark's (beyond what sqlglot's dialects already translate):

| DuckDB | Spark |
|---|---|
| ``* exclude (a, b)`` | the star expanded to its columns (Spark analyses the star's ``from``) minus those |
| ``hash(k, ...)``: 64 bits | ``xxhash64(k, ...)`` (Spark's ``hash`` has 32 bits: 1M keys would collide ~100 times) |
| ``strlen`` (bytes) | ``octet_length`` |
| ``len(list)`` | ``array_size`` (null of null; ``size`` is -1 without ANSI mode) |
| ``list_intersect`` | ``array_intersect`` |
| ``jaro_winkler_similarity``, ``damerau_levenshtein`` | pandas UDFs with DuckDB's values (``spark.similarity``) |
| ``rowid`` of a table created from an ordered query | ``row_number()`` over the rows' order (``monotonically_increasing_id``) - 1 |
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlglot
from sqlglot import exp

from mos_pipelines.spark.similarity import UDF_NAMES, register_similarities

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_RENAMED = {"hash": "XXHASH64", "strlen": "OCTET_LENGTH", "list_intersect": "ARRAY_INTERSECT"}
_ARRAYS = (exp.ArrayDistinct, exp.ArrayConcat, exp.Split, exp.Array)


def identity_spark_session() -> SparkSession:
    """The process's Spark session (``spark.session.spark_session``), its Python workers on this interpreter (the
    similarity UDFs need its pandas, pyarrow and rapidfuzz; Spark would start ``python3`` from PATH)."""
    from mos_pipelines.spark.session import spark_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return spark_session()


class SparkResult:
    """The result of one statement: a Spark DataFrame (a query) or rows (``describe``, DDL)."""

    def __init__(
        self, frame: DataFrame | None = None, rows: list[tuple] | None = None, columns: tuple[str, ...] = ()
    ) -> None:
        self._frame, self._rows, self._columns = frame, rows, list(columns)

    def df(self) -> pd.DataFrame:
        if self._frame is not None:
            return self._frame.toPandas()
        return pd.DataFrame(self._rows or [], columns=self._columns or None)

    def fetchall(self) -> list[tuple]:
        if self._frame is not None:
            return [tuple(row) for row in self._frame.collect()]
        return list(self._rows or [])

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None


class SparkConnection:
    """Runs DuckDB SQL on ``spark`` (see the module docstring). Temp tables and registered frames are the
    session's temp views: one ``SparkConnection`` at a time per session, as one DuckDB connection holds its own."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self._persisted: dict[str, DataFrame] = {}
        self._folder = tempfile.TemporaryDirectory(prefix="mos-spark-frames-")  # registered frames, as parquet
        self._serial = itertools.count()
        self.statements: list[tuple[str, float]] = []  # (statement's first words, seconds) of each one run
        spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
        # The UDFs' Python workers run this interpreter (its pandas, pyarrow, rapidfuzz), also in a session started
        # before (a Spark build's): pyspark reads the attribute when a UDF is defined; its default is `python3` on PATH.
        spark.sparkContext.pythonExec = sys.executable
        register_similarities(spark)

    # ------------------------------------------------------------------------------------ the DuckDB surface

    def execute(self, sql: str, params: list | tuple | None = None) -> SparkResult:
        result = SparkResult()
        values = list(params or [])
        for statement in sqlglot.parse(sql, read="duckdb"):
            if statement is not None:
                start = time.perf_counter()
                result = self._run(statement, values)
                self.statements.append((statement.sql(dialect="duckdb")[:80], time.perf_counter() - start))
        if values:
            raise ValueError(f"{len(values)} parameters left unbound in {sql!r}")
        return result

    def register(self, name: str, frame: pd.DataFrame) -> SparkConnection:
        self._spark_frame(name, frame).createOrReplaceTempView(name)
        return self

    def unregister(self, name: str) -> SparkConnection:
        self.spark.catalog.dropTempView(name)
        return self

    def close(self) -> None:
        """Unpersist and drop every table this connection created (the session stays: it is the process's)."""
        for name in list(self._persisted):
            self._drop(name)
        self._folder.cleanup()

    # --------------------------------------------------------------------------------------- statements

    def _run(self, statement: exp.Expr, params: list) -> SparkResult:
        if isinstance(statement, exp.Create) and statement.args.get("kind", "").upper() == "TABLE":
            name = statement.this.this.name if isinstance(statement.this, exp.Schema) else statement.this.name
            self._create(name, self.spark_sql(statement.expression, params))
            return SparkResult()
        if isinstance(statement, exp.Drop):
            for table in statement.args.get("tables") or [statement.this]:
                self._drop(table.name)
            return SparkResult()
        if isinstance(statement, exp.Describe):
            schema = self.spark.table(statement.this.name).schema
            return SparkResult(
                rows=[(f.name, f.dataType.simpleString()) for f in schema], columns=("column_name", "column_type")
            )
        return SparkResult(frame=self.spark.sql(self.spark_sql(statement, params)))

    def _create(self, name: str, query: str) -> None:
        # A local checkpoint (executor memory, spilled to disk), not a cached plan: each table's plan starts from its
        # rows, where cached plans nest every table it was built from (a plan's description grew with each step
        # until it filled the driver's heap).
        frame = self.spark.sql(query).localCheckpoint(eager=True)
        previous = self._persisted.pop(name, None)
        frame.createOrReplaceTempView(name)
        self._persisted[name] = frame
        if previous is not None:
            _release(previous)

    def _drop(self, name: str) -> None:
        frame = self._persisted.pop(name, None)
        if frame is not None:
            _release(frame)
        self.spark.catalog.dropTempView(name)

    def _spark_frame(self, name: str, frame: pd.DataFrame) -> DataFrame:
        """A pandas frame as a Spark DataFrame read from a parquet copy (Spark's own conversion embeds the rows in
        the query plan: 1M of them made every plan that read them slow). A column with no value at all (no type to
        infer) is a string."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        for i, field in enumerate(table.schema):
            if pa.types.is_null(field.type):
                table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
        # one file per core (a file this small is one partition: one core would do every join and comparison)
        folder = Path(self._folder.name) / f"frame{next(self._serial)}-{name.lstrip('_')}"  # `_…`: hidden to Spark
        folder.mkdir()
        parts = max(1, min(self.spark.sparkContext.defaultParallelism, table.num_rows // 10_000))
        step = -(-table.num_rows // parts)
        for k in range(parts):
            pq.write_table(table.slice(k * step, step), folder / f"part{k}.parquet")
        return self.spark.read.parquet(str(folder))

    # --------------------------------------------------------------------------------------- transpiling

    def spark_sql(self, statement: exp.Expr, params: list | None = None) -> str:
        """One DuckDB statement (parsed) as Spark SQL; consumes ``params`` for its ``?`` placeholders."""
        tree = rewrite(statement, params)
        selects = sorted(tree.find_all(exp.Select), key=lambda s: -_depth(s))
        for select in selects:  # innermost first: a star's `from` is expanded before an outer star reads it
            self._expand_excluding_stars(select)
        return tree.sql(dialect="spark")

    def _expand_excluding_stars(self, select: exp.Select) -> None:
        items = []
        for item in select.expressions:
            star = item.this if isinstance(item, exp.Column) and isinstance(item.this, exp.Star) else item
            excluded = star.args.get("except_") if isinstance(star, exp.Star) else None
            if not excluded:
                items.append(item)
                continue
            table = item.table if isinstance(item, exp.Column) else ""
            probe = select.copy()
            probe.set(
                "expressions", [exp.Column(this=exp.Star(), table=exp.to_identifier(table)) if table else exp.Star()]
            )
            for clause in ("where", "group", "having", "order", "limit", "qualify", "distinct"):
                probe.set(clause, None)
            dropped = {e.name.lower() for e in excluded}
            columns = self.spark.sql(probe.sql(dialect="spark")).columns
            items += [exp.column(c, table=table or None, quoted=True) for c in columns if c.lower() not in dropped]
        select.set("expressions", items)


def rewrite(statement: exp.Expr, params: list | None = None) -> exp.Expr:
    """A copy of a DuckDB statement with its ``?`` bound (consuming ``params``) and the rewrites of the module
    docstring's table applied, except the ``* exclude`` stars (they need Spark to list a star's columns)."""
    tree = statement.copy()
    for placeholder in list(tree.find_all(exp.Placeholder, bfs=False)):  # depth first: in the order written
        placeholder.replace(_literal(params.pop(0) if params else _missing(statement)))
    return tree.transform(_rewrite)


def _rewrite(node: exp.Expr) -> exp.Expr:
    """The function and pseudo-column differences of the module docstring's table (stars aside). A node replaced
    by a new one is not descended into by ``transform``: the new one's arguments are rewritten here."""
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name in _RENAMED or name in UDF_NAMES:
            node.set("this", _RENAMED.get(name) or UDF_NAMES[name])
        return node
    if isinstance(node, exp.JarowinklerSimilarity):
        arguments = [node.this.transform(_rewrite), node.expression.transform(_rewrite)]
        return exp.Anonymous(this=UDF_NAMES["jaro_winkler_similarity"], expressions=arguments)
    if isinstance(node, exp.Length) and _is_list(node.this):
        # array_size: null of null, as DuckDB's len (Spark's size is -1 of null with ANSI mode off)
        return exp.Anonymous(this="ARRAY_SIZE", expressions=[node.this.transform(_rewrite)])
    if isinstance(node, exp.Column) and not node.table and node.name.lower() == "rowid":
        return sqlglot.parse_one(
            "cast(row_number() over (order by monotonically_increasing_id()) - 1 as bigint)", read="spark"
        )
    return node


def _is_list(node: exp.Expr) -> bool:
    """Whether DuckDB's ``len`` reads a list here (the list functions the matcher writes), not a string."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in ("list_intersect", "array_intersect")
    return isinstance(node, _ARRAYS)


def _release(frame: DataFrame) -> None:
    """Free the blocks of a checkpointed frame now (Spark's cleaner would, once the JVM collects it)."""
    plan = frame._jdf.queryExecution().analyzed()
    if plan.nodeName() == "LogicalRDD":
        plan.rdd().unpersist(False)


def _literal(value: Any) -> exp.Expr:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):  # exactly this double (a bare 0.1 is a decimal on Spark)
        return exp.cast(exp.Literal.string(repr(value)), "double")
    return exp.Literal.string(str(value))


def _missing(statement: exp.Expr) -> Any:
    raise ValueError(f"not enough parameters for {statement.sql(dialect='duckdb')!r}")


def _depth(node: exp.Expr) -> int:
    depth = 0
    while node.parent is not None:
        node, depth = node.parent, depth + 1
    return depth
