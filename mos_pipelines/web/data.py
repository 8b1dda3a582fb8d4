"""What the web app reads from and writes to the warehouse, without FastAPI: short connections, one at a time.

DuckDB allows one writer process and, while it writes, no reader in another process. A run (``mos run``, the
Dagster UI) holds the file for minutes, so every page opens the warehouse for the request only and closes it,
retrying briefly while the file is locked; then ``Busy`` (the page says to try again in a minute, never a 500).
Within the app, connections are serialised by one lock: DuckDB refuses a read-only and a read-write connection
to the same file at once in one process.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from mos_pipelines import warehouse
from mos_pipelines.access import PII_MASKS, Principal

_LOCK = threading.Lock()


class Busy(RuntimeError):
    """The warehouse is held by a run (DuckDB's file lock) for longer than the app waits."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"The warehouse is busy with a run ({path} is locked by another process); try again in a minute."
        )


class NoWarehouse(RuntimeError):
    """No warehouse file yet (``mos run`` has not built one)."""


def _locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text


@contextmanager
def connection(path: Path, read_only: bool = True, wait_seconds: float = 2.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse for one request; ``Busy`` after ``wait_seconds`` of a held file lock."""
    if not path.exists():
        raise NoWarehouse(f"No warehouse at {path} yet: run `mos run` (or `make demo`) first.")
    deadline = time.monotonic() + wait_seconds
    with _LOCK:
        while True:
            try:
                con = warehouse.connect(path, read_only=read_only)
                break
            except warehouse.WarehouseError as exc:
                if not _locked(exc.__cause__ or exc):
                    raise
                if time.monotonic() >= deadline:
                    raise Busy(path) from exc
                time.sleep(0.1)
        try:
            yield con
        finally:
            con.close()


@contextmanager
def exclusive() -> Iterator[None]:
    """The app's warehouse turn, for a part that opens connections of its own (the assistant reads read-only, then
    writes its log: it must not meet one of the app's connections of the other kind)."""
    with _LOCK:
        yield


def write_with_retry(path: Path, wait_seconds: float, action) -> Any:  # noqa: ANN001 (a callable of a connection)
    """Run ``action(con)`` on a read-write connection; a lock met while writing is retried until the deadline."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with connection(path, read_only=False, wait_seconds=max(deadline - time.monotonic(), 0.0)) as con:
                return action(con)
        except duckdb.Error as exc:  # a lock taken between our open and the write (DuckDB's IO/transaction errors)
            if not _locked(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return warehouse.table_exists(con, schema, table)


# -- masking -----------------------------------------------------------------------------------------------------

_PII_COLUMN = re.compile(r"(^|_)(email|phone|name|first_name|last_name|full_name)(_|$)", re.IGNORECASE)
_NOT_PII = re.compile(r"(campaign|channel|metric|segment|region|template|variant|table|asset|model|company|account)")


def pii_kind(column: str) -> str | None:
    """``email`` / ``phone`` / ``name`` when a column holds a person's contact or name, else None."""
    lowered = column.lower()
    if not _PII_COLUMN.search(lowered) or _NOT_PII.search(lowered):
        return None
    for kind in ("email", "phone"):
        if kind in lowered:
            return kind
    return "name"


def mask_rows(rows: list[dict[str, Any]], principal: Principal) -> list[dict[str, Any]]:
    """Rows as the reader may see them: emails, phones and names masked without ``see_pii``."""
    if principal.can("see_pii") or not rows:
        return rows
    kinds = {c: pii_kind(c) for r in rows for c in r}
    masked = []
    for row in rows:
        out = {}
        for column, value in row.items():
            kind = kinds.get(column)
            out[column] = PII_MASKS[kind](str(value)) if kind and value is not None else value
        masked.append(out)
    return masked


def mask_table(columns: list[str], rows: list[list[Any]], principal: Principal) -> list[list[Any]]:
    dicts = mask_rows([dict(zip(columns, r)) for r in rows], principal)
    return [[d[c] for c in columns] for d in dicts]


# -- Dagster links -------------------------------------------------------------------------------------------------

_TABLE = re.compile(
    r"\b(marts|intermediate|staging|ml|policy|experiments|insights|activation|blueprints|ops)\"?\.\"?([a-z_][a-z0-9_]*)",
    re.IGNORECASE,
)


def asset_keys_in_sql(sql: str | None) -> list[list[str]]:
    """The warehouse tables a query reads (``schema.table``), which are the Dagster asset keys behind its numbers."""
    if not sql:
        return []
    found = dict.fromkeys((m.group(1).lower(), m.group(2).lower()) for m in _TABLE.finditer(sql))
    return [list(k) for k in found]


# -- Insights Hub --------------------------------------------------------------------------------------------------


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    return json.loads(frame.to_json(orient="records", date_format="iso"))


@dataclass
class Insight:
    rank: int
    row: pd.Series
    svg: str | None = None

    @property
    def id(self) -> str:
        return str(self.row["insight_id"])

    @property
    def evidence(self) -> dict[str, Any]:
        return self.row["evidence"] or {}

    @property
    def query(self) -> dict[str, Any]:
        return self.evidence.get("metric_query") or {}

    def assets(self) -> list[list[str]]:
        return [["insights", "insights"], *asset_keys_in_sql(self.query.get("sql"))]

    def value(self, column: str) -> Any:
        value = self.row.get(column)
        return None if value is None or (isinstance(value, float) and value != value) else value


def latest_insights(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    from mos_pipelines.insights import insight_tables

    if not table_exists(con, "insights", "insights"):
        return pd.DataFrame()
    return insight_tables.run_insights(con, status="accepted")


def insight(con: duckdb.DuckDBPyConnection, insight_id: str) -> Insight | None:
    """One insight of any run, with its rank in the latest run when it belongs to it."""
    frame = latest_insights(con)
    for rank, (_, row) in enumerate(frame.iterrows(), start=1):
        if row["insight_id"] == insight_id:
            return Insight(rank, row)
    if not table_exists(con, "insights", "insights"):
        return None
    found = con.execute("select * from insights.insights where insight_id = ?", [insight_id]).df()
    if found.empty:
        return None
    row = found.iloc[0].copy()
    row["evidence"] = json.loads(row["evidence"]) if isinstance(row["evidence"], str) else row["evidence"]
    return Insight(0, row)


def notifications(con: duckdb.DuckDBPyConnection, reader_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The reader's notifications, latest first, with the last verdict the reader gave on each."""
    if not table_exists(con, "insights", "notifications"):
        return []
    has_feedback = table_exists(con, "insights", "feedback")
    last_verdict = (
        """left join (select notification_id, verdict as last_verdict from insights.feedback where reader_id = ?
        qualify row_number() over (partition by notification_id order by created_at desc) = 1) f
        using (notification_id)"""
        if has_feedback
        else "left join (select null::varchar as notification_id, null::varchar as last_verdict) f using (notification_id)"
    )
    params: list[Any] = ([reader_id] if has_feedback else []) + [reader_id, limit]
    frame = con.execute(
        f"""select n.notification_id, n.created_at, n.source, n.severity, n.title, n.message, n.metric, n.figure,
        n.previous_figure, n.suggested_action, n.status, n.insight_id, n.insight_type, n.rank, n.score,
        f.last_verdict
        from insights.notifications n {last_verdict}
        where n.reader_id = ? order by n.created_at desc, n.rank nulls last, n.notification_id limit ?""",
        params,
    ).df()
    return _records(frame)


def next_ranking(con: duckdb.DuckDBPyConnection, reader_id: str) -> list[dict[str, Any]]:
    """The reader's ranking of the latest run's insights as the next run would compute it with the feedback given
    so far: the notifications asset's own ranking function, run read-only."""
    from mos_pipelines.configuration import load_insights
    from mos_pipelines.insights.notify import rank

    if not table_exists(con, "insights", "notifications") or not table_exists(con, "insights", "feedback"):
        return []
    ranked = rank(con, load_insights())
    mine = ranked.rankings[ranked.rankings["reader_id"] == reader_id]
    if mine.empty:
        return []
    titles = {r.insight_id: (r.insight_type, r.statement) for r in ranked.insights.itertuples(index=False)}
    rows = []
    for r in mine.sort_values(["rank", "insight_id"], na_position="last").itertuples(index=False):
        kind, statement = titles.get(r.insight_id, (r.insight_type, ""))
        rows.append(
            {
                "rank": None if pd.isna(r.rank) else int(r.rank),
                "insight_id": r.insight_id,
                "insight_type": kind,
                "statement": statement,
                "score": float(r.score),
                "feedback_weight": float(r.feedback_weight),
                "novelty": float(r.novelty),
                "relevance": float(r.relevance),
                "decision": r.decision,
            }
        )
    return rows


def readers() -> list[str]:
    from mos_pipelines.configuration import load_insights

    return [r.reader_id for r in load_insights().readers]


def record_feedback(
    path: Path, wait_seconds: float, notification_id: str, reader_id: str, verdict: str, note: str | None
) -> str:
    from mos_pipelines.insights import insight_tables

    def action(con: duckdb.DuckDBPyConnection) -> str:
        insight_tables.ensure_tables(con)
        return insight_tables.record_feedback(con, notification_id, reader_id, verdict, note)

    return write_with_retry(path, wait_seconds, action)


# -- approvals and activation --------------------------------------------------------------------------------------


def approvals(con: duckdb.DuckDBPyConnection, status: str | None) -> list[dict[str, Any]]:
    if not table_exists(con, "activation", "approvals"):
        return []
    where, params = ("where status = ?", [status]) if status else ("", [])
    frame = con.execute(
        f"select * from activation.approvals {where} order by status <> 'pending', requested_at, approval_id", params
    ).df()
    rows = _records(frame)
    for row in rows:
        row["claims"] = json.loads(row["claims"]) if isinstance(row["claims"], str) else row["claims"]
    return rows


def decide(path: Path, wait_seconds: float, approval_id: str, decision: str, by: str, note: str | None) -> None:
    from mos_pipelines.activation import content, ledger

    write_with_retry(
        path, wait_seconds, lambda con: content.decide(con, approval_id, decision, by, note, ledger.utcnow())
    )


def activation_status(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What ``mos activation status`` prints: the ledger per destination and status, stuck changes, approvals."""
    from mos_pipelines.activation import ledger

    if not table_exists(con, "ops", "activation_ledger"):
        summary: list[dict[str, Any]] = []
        stuck: list[dict[str, Any]] = []
    else:
        summary = _records(ledger.summary(con))
        stuck = _records(
            con.execute(
                "select destination, record_key, status, attempts, last_error from ops.activation_ledger "
                "where status in ('dead_letter', 'unknown', 'failed') order by destination, record_key limit 20"
            ).df()
        )
    pending = len(approvals(con, "pending"))
    return {"summary": summary, "stuck": stuck, "pending": pending}


# -- blueprints ----------------------------------------------------------------------------------------------------


def blueprints(con: duckdb.DuckDBPyConnection | None, directory: Path) -> list[dict[str, Any]]:
    """Every blueprint of ``$MOS_HOME/blueprints``: status, steps and what ``mos blueprint progress`` shows."""
    from mos_pipelines.blueprint import ledger, progress, store
    from mos_pipelines.configuration import ConfigError

    found: list[dict[str, Any]] = []
    for path in sorted(directory.glob("bp_*.yaml")) if directory.exists() else []:
        try:
            bp, _ = store.load(path)
        except (ConfigError, ValueError) as exc:
            found.append({"id": path.stem, "problem": str(exc)})
            continue
        rows: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []
        if con is not None:
            rows = _records(progress.read(con, bp.blueprint_id))
            approved = bp.approval.content_hash if bp.approval is not None else None
            steps = ledger.latest(con, bp.blueprint_id, approved)
        found.append(
            {
                "id": bp.blueprint_id,
                "status": bp.status(),
                "revision": bp.revision,
                "objective": f"{bp.objective.metric} in {bp.objective.segment_text()}",
                "budget_usd": bp.budget_usd,
                "goal": bp.goal,
                "steps_total": len(bp.steps),
                "steps_run": len(steps),
                "cost": ledger.totals(steps),
                "progress": rows,
            }
        )
    return found


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# -- a customer and its relationship graph -----------------------------------------------------------------------


def customer(con: duckdb.DuckDBPyConnection, customer_id: str) -> dict[str, Any] | None:
    """The golden record's display fields of one customer (``marts.dim_customers``), its lifecycle stage when
    ``marts.dim_customer_lifecycle`` exists; None when there is no such customer."""
    if not table_exists(con, "marts", "dim_customers"):
        raise NoWarehouse("No marts.dim_customers in the warehouse yet: run `mos run` first.")
    columns = {
        c
        for (c,) in con.execute(
            "select column_name from information_schema.columns where table_schema = 'marts' "
            "and table_name = 'dim_customers'"
        ).fetchall()
    }
    wanted = [c for c in ("customer_id", "first_name", "last_name", "company", "job_title") if c in columns]
    found = con.execute(
        f"select {', '.join(wanted)} from marts.dim_customers where customer_id = ?", [customer_id]
    ).df()
    if found.empty:
        return None
    row = _records(found)[0]
    row["lifecycle_stage"] = None
    if table_exists(con, "marts", "dim_customer_lifecycle"):
        stage = con.execute(
            "select lifecycle_stage from marts.dim_customer_lifecycle where customer_id = ?", [customer_id]
        ).fetchone()
        row["lifecycle_stage"] = stage[0] if stage else None
    return row


def display_name(row: dict[str, Any]) -> str | None:
    parts = [str(row[c]).strip() for c in ("first_name", "last_name") if row.get(c) and str(row[c]).strip()]
    return " ".join(parts) or None


def customer_edges(con: duckdb.DuckDBPyConnection, customer_id: str) -> list[dict[str, Any]] | None:
    """Every edge of ``marts.customer_relationships`` touching the customer (None: the table is not built)."""
    if not table_exists(con, "marts", "customer_relationships"):
        return None
    frame = con.execute(
        "select source_id, source_kind, relationship, target_id, target_kind, weight, evidence, evidence_source, "
        "note_id from marts.customer_relationships "
        "where source_id = ? or (target_id = ? and target_kind = 'customer') "
        "order by relationship, source_id, target_id, evidence_source, note_id",
        [customer_id, customer_id],
    ).df()
    return _records(frame)


def customer_names(con: duckdb.DuckDBPyConnection, customer_ids: list[str]) -> dict[str, str | None]:
    """customer id -> "first last" from the golden record (ids without a name are left out)."""
    if not customer_ids:
        return {}
    rows = con.execute(
        "select customer_id, first_name, last_name from marts.dim_customers "
        "where customer_id in (select unnest(?::varchar[]))",
        [customer_ids],
    ).df()
    return {r["customer_id"]: display_name(r) for r in _records(rows) if display_name(r)}
