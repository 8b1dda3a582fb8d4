"""Smart notifications: per reader, the run's accepted insights ranked by
impact × confidence × novelty × relevance × feedback weight, capped per day, repeats held back.

- impact: log-scaled $ impact against the run's largest (0.5 when an insight has no $ estimate);
- confidence: 1 − q-value;
- novelty: 1 for an insight never notified to the reader, 0.8 when it was and its effect moved by at
  least ``renotify_min_change`` (or flipped direction) — otherwise it is a repeat, ranked at 0.25 and
  not notified again;
- relevance: 1 when the insight serves one of the reader's objectives (and, when the reader lists
  channels or regions, is about one of them), else ``other_objective_relevance``;
- feedback: each not_useful on an insight type multiplies that type's weight for the reader by
  ``not_useful_factor``, each useful by ``useful_factor`` (within [0.05, 2]); mark_as_completed removes
  that insight (its key) from the reader's notifications for good.

Insights scoring below ``min_score`` are ranked but not notified (an insight for another objective
rarely reaches a reader). A lookalike degradation notification written by the lookalike asset (reader-less, source 'lookalike') is
routed: when this run accepts the matching insight, the raw row is marked ``routed`` and linked to it,
and readers get it through the ranking like any other insight.
"""

from __future__ import annotations

import datetime
import hashlib
import math
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from mos_pipelines.configuration.insights import InsightsSettings, Reader
from mos_pipelines.insights import insight_tables
from mos_pipelines.warehouse import insert_frame

REPEAT_NOVELTY = 0.25
CHANGED_NOVELTY = 0.8


@dataclass
class NotifyResult:
    rankings: pd.DataFrame
    notified: pd.DataFrame
    routed: list[str]


def _subject_values(evidence: dict) -> set[str]:
    subject = evidence.get("subject", {}) or {}
    values: set[str] = set()
    for value in subject.values():
        if isinstance(value, str):
            values.add(value)
        elif isinstance(value, list):
            values.update(str(v) for v in value)
    return values


def relevance(reader: Reader, objective: str, evidence: dict, other: float) -> float:
    score = 1.0 if objective in reader.objectives else other
    subject = _subject_values(evidence)
    if reader.channels and not subject & set(reader.channels):
        score = min(score, other)
    if reader.regions and not subject & set(reader.regions):
        score = min(score, other)
    return score


def feedback_weights(con: duckdb.DuckDBPyConnection, config: InsightsSettings) -> tuple[dict, set]:
    """Per (reader, insight type) weights from feedback, and the (reader, insight key) pairs completed."""
    frame = con.execute(
        """select f.reader_id, f.verdict, n.insight_type, n.insight_key
        from insights.feedback f join insights.notifications n using (notification_id)"""
    ).df()
    weights: dict[tuple[str, str], float] = {}
    completed: set[tuple[str, str]] = set()
    factors = {"not_useful": config.notifications.not_useful_factor, "useful": config.notifications.useful_factor}
    for row in frame.itertuples(index=False):
        if row.verdict == "mark_as_completed":
            completed.add((row.reader_id, row.insight_key))
        elif row.verdict in factors and isinstance(row.insight_type, str):
            key = (row.reader_id, row.insight_type)
            weights[key] = min(2.0, max(0.05, weights.get(key, 1.0) * factors[row.verdict]))
    return weights, completed


def _last_notified(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], float | None]:
    frame = con.execute(
        """select reader_id, insight_key, figure from insights.notifications
        where reader_id is not null and insight_key is not null
        qualify row_number() over (partition by reader_id, insight_key order by created_at desc, notification_id) = 1"""
    ).df()
    return {
        (r.reader_id, r.insight_key): (None if pd.isna(r.figure) else float(r.figure))
        for r in frame.itertuples(index=False)
    }


def changed_materially(previous: float | None, current: float | None, min_change: float, insight_type: str) -> bool:
    if previous is None or current is None:
        return previous != current
    if insight_type in ("anomaly", "lookalike_degradation"):  # effects on a difference scale around 0
        return (previous > 0) != (current > 0) or abs(current - previous) >= min_change * max(abs(previous), 1e-9)
    if previous <= 0 or current <= 0:
        return previous != current
    return abs(math.log(current / previous)) >= math.log1p(min_change)


def _sent_today(con: duckdb.DuckDBPyConnection, reader_id: str, now: datetime.datetime) -> int:
    day = now.astimezone(datetime.UTC).date()
    rows = con.execute(
        """select count(*) from insights.notifications where reader_id = ? and source = 'insights'
        and cast(timezone('UTC', created_at) as date) = ?""",
        [reader_id, day],
    ).fetchall()
    return int(rows[0][0])


RANKING_COLUMNS = [
    "run_created_at",
    "reader_id",
    "insight_id",
    "insight_key",
    "insight_type",
    "rank",
    "score",
    "impact_score",
    "confidence",
    "novelty",
    "relevance",
    "feedback_weight",
    "decision",
    "notification_id",
]


def notify(
    con: duckdb.DuckDBPyConnection,
    config: InsightsSettings,
    run_created_at: datetime.datetime | None = None,
    now: datetime.datetime | None = None,
) -> NotifyResult:
    """Rank the run's accepted insights for every reader and write the notifications that make the cut."""
    insight_tables.ensure_tables(con)
    ranked = rank(con, config, run_created_at, now)
    if ranked.insights.empty:
        return NotifyResult(ranked.rankings, ranked.notified, [])
    _write(con, ranked.rankings, ranked.notified, ranked.rankings["run_created_at"].iloc[0])
    routed = _route_lookalike(con, ranked.insights)
    return NotifyResult(ranked.rankings, ranked.notified, routed)


@dataclass
class Ranked:
    rankings: pd.DataFrame  # RANKING_COLUMNS, every reader
    notified: pd.DataFrame  # the notifications that make the cut (not written)
    insights: pd.DataFrame  # the run's accepted insights


def rank(
    con: duckdb.DuckDBPyConnection,
    config: InsightsSettings,
    run_created_at: datetime.datetime | None = None,
    now: datetime.datetime | None = None,
) -> Ranked:
    """The ranking ``notify`` writes, computed from the warehouse as it is now (feedback included) without
    writing anything: the web app shows it as a reader's next ranking right after feedback."""
    now = now or datetime.datetime.now(datetime.UTC)
    insights = insight_tables.run_insights(con, run_created_at)
    columns = RANKING_COLUMNS
    if insights.empty:
        return Ranked(pd.DataFrame(columns=columns), pd.DataFrame(), insights)
    run_created_at = insights["created_at"].iloc[0]
    impact = insights["impact_usd"].astype(float)
    top = float(np.log1p(impact.max())) if impact.notna().any() and impact.max() > 0 else 1.0
    insights["impact_score"] = (np.log1p(impact.clip(lower=0)) / top).fillna(0.5)
    insights["confidence"] = (1 - insights["q_value"].astype(float).fillna(1.0)).clip(lower=0.0)
    weights, completed = feedback_weights(con, config)
    last = _last_notified(con)
    min_change = config.notifications.renotify_min_change
    other = config.notifications.other_objective_relevance
    min_score = config.notifications.min_score
    rankings, notified = [], []
    for reader in config.readers:
        rows = []
        for ins in insights.itertuples(index=False):
            key = ins.evidence["key"]
            if (reader.reader_id, key) in completed:
                rows.append(
                    {
                        "insight": ins,
                        "key": key,
                        "novelty": 0.0,
                        "relevance": 0.0,
                        "weight": 0.0,
                        "score": 0.0,
                        "decision": "completed",
                    }
                )
                continue
            if (reader.reader_id, key) not in last:  # never notified
                novelty, decision = 1.0, "candidate"
            elif changed_materially(last[(reader.reader_id, key)], ins.effect_size, min_change, ins.insight_type):
                novelty, decision = CHANGED_NOVELTY, "candidate"
            else:
                novelty, decision = REPEAT_NOVELTY, "repeat"
            rel = relevance(reader, ins.objective, ins.evidence, other)
            weight = weights.get((reader.reader_id, ins.insight_type), 1.0)
            score = ins.impact_score * ins.confidence * novelty * rel * weight
            rows.append(
                {
                    "insight": ins,
                    "key": key,
                    "novelty": novelty,
                    "relevance": rel,
                    "weight": weight,
                    "score": score,
                    "decision": decision,
                }
            )
        ranked = sorted(
            (r for r in rows if r["decision"] != "completed"), key=lambda r: (-r["score"], r["insight"].insight_id)
        )
        remaining = max(reader.daily_cap - _sent_today(con, reader.reader_id, now), 0)
        for rank, row in enumerate(ranked, start=1):
            row["rank"] = rank
            if row["decision"] == "candidate":
                if row["score"] < min_score:
                    row["decision"] = "below_min_score"
                elif remaining > 0:
                    row["decision"] = "notified"
                    remaining -= 1
                else:
                    row["decision"] = "over_daily_cap"
        for row in rows:
            ins = row["insight"]
            notification_id = None
            if row["decision"] == "notified":
                notification_id = hashlib.sha256(f"{reader.reader_id}|{ins.insight_id}".encode()).hexdigest()[:16]
                notified.append(_notification(reader, ins, row, notification_id, last, now, run_created_at))
            rankings.append(
                {
                    "run_created_at": run_created_at,
                    "reader_id": reader.reader_id,
                    "insight_id": ins.insight_id,
                    "insight_key": row["key"],
                    "insight_type": ins.insight_type,
                    "rank": row.get("rank"),
                    "score": row["score"],
                    "impact_score": ins.impact_score,
                    "confidence": ins.confidence,
                    "novelty": row["novelty"],
                    "relevance": row["relevance"],
                    "feedback_weight": row["weight"],
                    "decision": row["decision"],
                    "notification_id": notification_id,
                }
            )
    return Ranked(pd.DataFrame(rankings, columns=columns), pd.DataFrame(notified), insights)


def _notification(
    reader: Reader, ins, row: dict, notification_id: str, last: dict, now: datetime.datetime, run_created_at
) -> dict:
    previous = last.get((reader.reader_id, row["key"]))
    severity = "warning" if ins.insight_type in ("anomaly", "lookalike_degradation") else "info"
    subject = ins.evidence.get("subject", {})
    return {
        "notification_id": notification_id,
        "created_at": now,
        "source": "insights",
        "severity": severity,
        "subject": row["key"],
        "title": _title(ins),
        "message": ins.statement,
        "metric": subject.get("metric"),
        "figure": ins.effect_size,
        "previous_figure": previous,
        "suggested_action": ins.call_to_action,
        "status": "new",
        "reader_id": reader.reader_id,
        "insight_id": ins.insight_id,
        "insight_key": row["key"],
        "insight_type": ins.insight_type,
        "run_created_at": run_created_at,
        "rank": row["rank"],
        "score": row["score"],
        "impact_score": ins.impact_score,
        "confidence": ins.confidence,
        "novelty": row["novelty"],
        "relevance": row["relevance"],
        "feedback_weight": row["weight"],
    }


def _title(ins) -> str:
    subject = ins.evidence.get("subject", {})
    kind = ins.insight_type.replace("_", " ")
    parts = [
        str(v)
        for k, v in subject.items()
        if k in ("metric", "slice", "region", "channel", "campaign_id", "audience", "scope") and v
    ]
    return f"{kind.capitalize()}: {' · '.join(parts)}" if parts else kind.capitalize()


def _write(con: duckdb.DuckDBPyConnection, rankings: pd.DataFrame, notified: pd.DataFrame, run_created_at) -> None:
    con.execute("delete from insights.notification_rankings where run_created_at = ?", [run_created_at])
    if not rankings.empty:
        insert_frame(con, "insights.notification_rankings", rankings)
    if not notified.empty:
        insert_frame(con, "insights.notifications", notified, replace=True)


def _route_lookalike(con: duckdb.DuckDBPyConnection, insights: pd.DataFrame) -> list[str]:
    """Link the lookalike asset's own degradation notifications to the accepted insight about them."""
    routed = []
    for ins in insights[insights["insight_type"] == "lookalike_degradation"].itertuples(index=False):
        notification_id = ins.evidence.get("subject", {}).get("notification_id")
        if not notification_id:
            continue
        updated = con.execute(
            """update insights.notifications set status = 'routed', insight_id = ?, insight_key = ?,
            insight_type = 'lookalike_degradation'
            where notification_id = ? and source = 'lookalike' and status = 'new' returning notification_id""",
            [ins.insight_id, ins.evidence["key"], notification_id],
        ).fetchall()
        routed += [r[0] for r in updated]
    return routed
