"""Warehouse tables of the Insights Hub.

- ``insights.insights``: every candidate of every run (accepted or rejected with the reason), columns
  exactly as specified; the run is its ``created_at``; the stable key, subject, decision and phrasing
  live in ``evidence`` next to the metric query and its rows.
- ``insights.notifications``: created by the lookalike capability (12 columns); the insights flow adds
  reader, insight and ranking columns. Rows of other sources (lookalike degradation) keep working.
- ``insights.notification_rankings``: each run's full ranking per reader with the decision per insight
  (notified, over the daily cap, repeat, completed), so a ranking can be explained.
- ``insights.feedback``: useful / not_useful / mark_as_completed per notification and reader.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

import duckdb
import pandas as pd

from mos_pipelines.insights.candidate import Candidate, evidence_json
from mos_pipelines.lookalike import score_tables

INSIGHT_COLUMNS = (
    "insight_id",
    "insight_type",
    "statement",
    "call_to_action",
    "objective",
    "hypothesis",
    "effect_size",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "impact_usd",
    "evidence",
    "status",
    "created_at",
)
VERDICTS = ("useful", "not_useful", "mark_as_completed")

DDL = """
create schema if not exists insights;
create table if not exists insights.insights (
    insight_id varchar primary key,
    insight_type varchar not null,
    statement varchar not null,
    call_to_action varchar,
    objective varchar,
    hypothesis varchar,
    effect_size double,
    ci_low double,
    ci_high double,
    p_value double,
    q_value double,
    impact_usd double,
    evidence json,
    status varchar not null,
    created_at timestamptz not null
);
create table if not exists insights.feedback (
    feedback_id varchar primary key,
    notification_id varchar not null,
    reader_id varchar not null,
    verdict varchar not null,
    note varchar,
    created_at timestamptz not null
);
create table if not exists insights.notification_rankings (
    run_created_at timestamptz not null,
    reader_id varchar not null,
    insight_id varchar not null,
    insight_key varchar not null,
    insight_type varchar not null,
    rank integer,
    score double not null,
    impact_score double,
    confidence double,
    novelty double,
    relevance double,
    feedback_weight double,
    decision varchar not null,
    notification_id varchar,
    primary key (run_created_at, reader_id, insight_id)
);
"""
NOTIFICATION_EXTRA_COLUMNS = (
    ("reader_id", "varchar"),
    ("insight_id", "varchar"),
    ("insight_key", "varchar"),
    ("insight_type", "varchar"),
    ("run_created_at", "timestamptz"),
    ("rank", "integer"),
    ("score", "double"),
    ("impact_score", "double"),
    ("confidence", "double"),
    ("novelty", "double"),
    ("relevance", "double"),
    ("feedback_weight", "double"),
)


class FeedbackError(ValueError):
    """Feedback that names no known notification, or an unknown verdict."""


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    score_tables.ensure_tables(con)  # insights.notifications as the lookalike capability created it
    con.execute(DDL)
    for column, kind in NOTIFICATION_EXTRA_COLUMNS:
        con.execute(f"alter table insights.notifications add column if not exists {column} {kind}")


def insight_rows(candidates: list[Candidate], created_at: datetime.datetime) -> pd.DataFrame:
    rows = []
    for c in candidates:
        evidence = {
            "key": c.key,
            "subject": c.subject,
            "direction": c.direction,
            "decision": {
                "status": c.status,
                "reason": c.reason,
                "q_value": c.q_value,
                "relative_effect": c.relative_effect,
            },
            **c.evidence,
            "phrasing": c.phrasing,
        }
        rows.append(
            {
                "insight_id": c.insight_id(created_at),
                "insight_type": c.insight_type,
                "statement": c.statement or "",
                "call_to_action": c.call_to_action,
                "objective": c.objective,
                "hypothesis": c.hypothesis,
                "effect_size": c.effect_size,
                "ci_low": c.ci_low,
                "ci_high": c.ci_high,
                "p_value": c.p_value,
                "q_value": c.q_value,
                "impact_usd": c.impact_usd,
                "evidence": evidence_json(evidence),
                "status": c.status,
                "created_at": created_at,
            }
        )
    return pd.DataFrame(rows, columns=list(INSIGHT_COLUMNS))


def write_insights(con: duckdb.DuckDBPyConnection, candidates: list[Candidate], created_at: datetime.datetime) -> int:
    frame = insight_rows(candidates, created_at)
    if frame.empty:
        return 0
    con.register("_insights", frame)
    try:
        con.execute(
            "insert or replace into insights.insights by name "
            "select * replace (cast(evidence as json) as evidence) from _insights"
        )
    finally:
        con.unregister("_insights")
    return len(frame)


def latest_run(con: duckdb.DuckDBPyConnection) -> datetime.datetime | None:
    rows = con.execute("select max(created_at) from insights.insights").fetchall()
    return rows[0][0]


def run_insights(
    con: duckdb.DuckDBPyConnection, created_at: datetime.datetime | None = None, status: str | None = "accepted"
) -> pd.DataFrame:
    """The insights of one run (default: the latest), best first (impact × confidence)."""
    created_at = created_at or latest_run(con)
    if created_at is None:
        return pd.DataFrame(columns=list(INSIGHT_COLUMNS))
    where = "created_at = ?" + (" and status = ?" if status else "")
    params: list[Any] = [created_at] + ([status] if status else [])
    frame = con.execute(f"select * from insights.insights where {where}", params).df()
    if frame.empty:
        return frame
    frame["evidence"] = frame["evidence"].map(lambda e: json.loads(e) if isinstance(e, str) else e)
    frame["priority"] = priority(frame)
    return frame.sort_values(["priority", "insight_id"], ascending=[False, True]).reset_index(drop=True)


def priority(frame: pd.DataFrame) -> pd.Series:
    """Reader-independent order: log-scaled $ impact (0.5 when not estimable) × (1 − q)."""
    import numpy as np

    impact = frame["impact_usd"].astype(float)
    top = float(np.log1p(impact.max())) if impact.notna().any() and impact.max() > 0 else 1.0
    scaled = (np.log1p(impact.clip(lower=0)) / top).fillna(0.5)
    return scaled * (1 - frame["q_value"].astype(float).fillna(1.0)).clip(lower=0.0)


def record_feedback(
    con: duckdb.DuckDBPyConnection,
    notification_id: str,
    reader_id: str,
    verdict: str,
    note: str | None = None,
    at: datetime.datetime | None = None,
) -> str:
    """Store a reader's verdict on a notification; it changes that reader's next ranking."""
    if verdict not in VERDICTS:
        raise FeedbackError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
    found = con.execute(
        "select reader_id from insights.notifications where notification_id = ?", [notification_id]
    ).fetchall()
    if not found:
        raise FeedbackError(f"no notification with id {notification_id!r} in insights.notifications")
    if found[0][0] is not None and found[0][0] != reader_id:
        raise FeedbackError(f"notification {notification_id} was sent to {found[0][0]!r}, not to {reader_id!r}")
    at = at or datetime.datetime.now(datetime.UTC)
    feedback_id = hashlib.sha256(f"{notification_id}|{reader_id}|{verdict}|{at.isoformat()}".encode()).hexdigest()[:16]
    con.execute(
        "insert into insights.feedback values (?, ?, ?, ?, ?, ?)",
        [feedback_id, notification_id, reader_id, verdict, note, at],
    )
    status = {"useful": "useful", "not_useful": "not_useful", "mark_as_completed": "completed"}[verdict]
    con.execute("update insights.notifications set status = ? where notification_id = ?", [status, notification_id])
    return feedback_id


NOTIFICATION_BASE_COLUMNS = (
    "notification_id",
    "created_at",
    "source",
    "severity",
    "subject",
    "title",
    "message",
    "metric",
    "figure",
    "previous_figure",
    "suggested_action",
    "status",
)


def write_notification(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> str:
    """One notification written directly by a capability (lookalike degradation, blueprint alerts) rather than
    ranked by the insights run: the 12 base columns, plus any of the reader / insight columns (``reader_id``
    addresses it to one reader). Same ``notification_id`` → replaced, so a re-run does not notify twice."""
    ensure_tables(con)
    known = set(NOTIFICATION_BASE_COLUMNS) | {c for c, _ in NOTIFICATION_EXTRA_COLUMNS}
    unknown = set(row) - known
    if unknown:
        raise ValueError(f"insights.notifications has no column {', '.join(sorted(unknown))}")
    values = {"status": "new", **row}
    names = list(values)
    con.execute(
        f"insert or replace into insights.notifications ({', '.join(names)}) values ({', '.join('?' for _ in names)})",
        [values[n] for n in names],
    )
    return str(values["notification_id"])
