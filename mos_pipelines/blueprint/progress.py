"""``blueprints.progress``: one row per blueprint per day of data — the goal metric's count in the segment against
the planned trajectory (with the goal's interval), the $ spent to date against plan, the steps done. Written by the
checkpoint step; when the count falls below the trajectory's lower bound, an insight in ``insights.insights`` with a
call to action (move budget to the channel with the best measured CAC) and its evidence, and a notification to the
blueprint's owner.

Time runs on the data's clock, not the wall clock: the day is the channel mart's last day (``context.as_of``), and
the horizon starts at the blueprint's data day (``as_of``, when its baseline was counted) and lasts
``objective.horizon_days``. So a simulated world or a warehouse loaded late is judged on the days it has.

The trajectory is linear from the baseline to the target over the horizon; its interval is the goal's gain
interval (5th–95th percentile of what the budget buys) scaled the same way. Planned spend is the spendable budget
(total minus ``reserve`` steps) scaled by the same fraction; spent is the sum of the latest ``cost_usd`` of each
step for the approved content (``ops.step_runs``, the ledger).
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import pandas as pd

from mos_pipelines.blueprint import ledger
from mos_pipelines.blueprint.context import PROVIDERS, Context
from mos_pipelines.blueprint.plan import Blueprint
from mos_pipelines.configuration.blueprint import BlueprintSettings
from mos_pipelines.insights import insight_tables
from mos_pipelines.insights.candidate import Candidate, key_of
from mos_pipelines.warehouse import columns_of, insert_frame, table_exists

DDL = """
create schema if not exists blueprints;
create table if not exists blueprints.progress (
    blueprint_id varchar not null,
    day date not null,              -- the data day (last day of the channel mart) the count is taken on
    revision integer not null,
    content_hash varchar not null,
    metric varchar not null,
    segment varchar not null,
    days_elapsed integer not null,  -- since the blueprint's data day
    horizon_days integer not null,
    baseline double not null,
    target double not null,
    actual double not null,         -- the goal metric's count in the segment on this day
    planned double not null,        -- the trajectory on this day
    planned_lower double not null,
    planned_upper double not null,
    spent_usd double not null,      -- latest cost_usd of every step (ops.step_runs) for the approved content
    planned_spend_usd double not null,
    budget_usd double not null,
    steps_done integer not null,
    steps_total integer not null,
    status varchar not null,        -- too_early | behind | on_track | ahead
    insight_id varchar,             -- the behind-plan insight written on this day
    run_id varchar not null,
    computed_at timestamptz not null,
    primary key (blueprint_id, day)
);
"""

QUERY = "select * from blueprints.progress where blueprint_id = ? order by day"


@dataclass
class Progress:
    blueprint_id: str
    day: datetime.date
    revision: int
    content_hash: str
    metric: str
    segment: str
    days_elapsed: int
    horizon_days: int
    baseline: float
    target: float
    actual: float
    planned: float
    planned_lower: float
    planned_upper: float
    spent_usd: float
    planned_spend_usd: float
    budget_usd: float
    steps_done: int
    steps_total: int
    status: str
    insight_id: str | None
    run_id: str
    computed_at: datetime.datetime

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["day"] = self.day.isoformat()
        out["computed_at"] = self.computed_at.isoformat()
        return out


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def start_day(bp: Blueprint) -> datetime.date | None:
    return datetime.date.fromisoformat(bp.as_of) if bp.as_of else None


def trajectory(bp: Blueprint, day: datetime.date) -> tuple[int, float, float, float, float]:
    """(days elapsed, fraction of the horizon, planned, lower, upper) on ``day``: linear from the baseline."""
    start = start_day(bp) or day
    horizon = max(bp.objective.horizon_days, 1)
    elapsed = (day - start).days
    frac = min(max(elapsed / horizon, 0.0), 1.0)
    goal = bp.goal
    baseline = float(goal.get("baseline") or 0)
    target = float(goal.get("target") or baseline)
    lo, hi = (list(goal.get("gain_interval") or []) + [None, None])[:2]
    gain = target - baseline
    lo_gain = float(lo) if lo is not None else gain
    hi_gain = float(hi) if hi is not None else gain
    planned = baseline + gain * frac
    lower = baseline + min(lo_gain, gain) * frac
    upper = baseline + max(hi_gain, gain) * frac
    return elapsed, frac, round(planned, 3), round(lower, 3), round(upper, 3)


def spendable(bp: Blueprint) -> float:
    return sum(s.budget_usd for s in bp.steps if s.type != "reserve")


def compute(
    con: duckdb.DuckDBPyConnection,
    bp: Blueprint,
    settings: BlueprintSettings,
    actual: float,
    day: datetime.date,
    run_id: str,
    computed_at: datetime.datetime,
    running: str | None = None,
) -> Progress:
    """The day's row. ``running``: the step computing it (the checkpoint), counted done: its row is written after."""
    assert bp.approval is not None
    elapsed, frac, planned, lower, upper = trajectory(bp, day)
    rows = ledger.latest(con, bp.blueprint_id, bp.approval.content_hash)
    spent = round(sum(float(r["cost_usd"] or 0) for r in rows), 2)
    done = len({r["step_id"] for r in rows if r["status"] in ledger.DONE and r["step_id"] != running})
    done += running is not None
    baseline = float(bp.goal.get("baseline") or 0)
    target = float(bp.goal.get("target") or baseline)
    tolerance = settings.progress.behind_tolerance * max(planned - baseline, 0.0)
    if elapsed < settings.progress.min_days:
        status = "too_early"
    elif actual < lower - tolerance:
        status = "behind"
    elif actual > upper:
        status = "ahead"
    else:
        status = "on_track"
    return Progress(
        blueprint_id=bp.blueprint_id,
        day=day,
        revision=bp.revision,
        content_hash=bp.approval.content_hash,
        metric=bp.objective.metric,
        segment=bp.objective.segment_text(),
        days_elapsed=elapsed,
        horizon_days=bp.objective.horizon_days,
        baseline=baseline,
        target=target,
        actual=float(actual),
        planned=planned,
        planned_lower=lower,
        planned_upper=upper,
        spent_usd=spent,
        planned_spend_usd=round(spendable(bp) * frac, 2),
        budget_usd=bp.budget_usd,
        steps_done=done,
        steps_total=len(bp.steps),
        status=status,
        insight_id=None,
        run_id=run_id,
        computed_at=computed_at,
    )


def write(con: duckdb.DuckDBPyConnection, row: Progress) -> None:
    """Insert or replace the day's row (a second checkpoint on the same data day replaces the first)."""
    ensure(con)
    insert_frame(con, "blueprints.progress", pd.DataFrame([asdict(row)]), replace=True)


def read(con: duckdb.DuckDBPyConnection, blueprint_id: str) -> pd.DataFrame:
    if not table_exists(con, "blueprints", "progress"):
        return pd.DataFrame()
    return con.execute(QUERY, [blueprint_id]).df()


# -- behind plan: an insight with a call to action ---------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """Budget to move from the worst funded channel to the best measured one, or why none."""

    text: str
    amount_usd: float | None = None
    from_channel: str | None = None
    to_channel: str | None = None
    from_cac_usd: float | None = None
    to_cac_usd: float | None = None
    extra_customers: float | None = None


def recommend(con: duckdb.DuckDBPyConnection, bp: Blueprint, settings: BlueprintSettings, day: datetime.date):
    """(Move, the channel_rates fact): the funded channel with the highest measured CAC that still has budget gives
    what the best channel can absorb to the priced channel with the lowest CAC (the context provider's rates).
    A channel absorbs at most ``goal.max_spend_multiple`` × its trailing daily cost over the days left, minus what
    the plan already gives it — the planner's own cap."""
    metric = settings.metrics.get(bp.objective.metric)
    measure = metric.bought_by if metric is not None else "new_customers"
    fact = PROVIDERS["channel_rates"](Context(con, settings, day), segment=bp.objective.segment, measure=measure)
    if not fact.available or not fact.value:
        return Move(f"no channel rates ({fact.reason}): review the plan's channels by hand"), fact
    priced = {
        c["channel"]: c for c in fact.value.get("channels", []) if (c.get("cac_usd") or {}).get("mean") is not None
    }
    if not priced:
        return Move("no channel with a measured CAC: review the plan's channels by hand"), fact
    cac = {ch: float(c["cac_usd"]["mean"]) for ch, c in priced.items()}
    assert bp.approval is not None
    latest = {r["step_id"]: r for r in ledger.latest(con, bp.blueprint_id, bp.approval.content_hash)}
    left: dict[str, float] = {}  # channel -> the plan's budget not yet spent on it
    for s in bp.steps:
        channel = s.params.get("channel") if s.type in ("channel_budget", "nurture_email") else None
        if channel is None:
            continue
        spent = float(latest[s.id]["cost_usd"] or 0) if s.id in latest else 0.0
        left[str(channel)] = left.get(str(channel), 0.0) + max(s.budget_usd - spent, 0.0)
    start = start_day(bp) or day
    days_left = max(bp.objective.horizon_days - (day - start).days, 0)
    multiple = settings.goal.max_spend_multiple
    room = {
        ch: max(multiple * float(c.get("daily_cost_usd") or 0) * days_left - left.get(ch, 0.0), 0.0)
        for ch, c in priced.items()
    }
    sources = sorted(((cac[ch], ch) for ch, v in left.items() if ch in cac and v > 0.005), reverse=True)
    for worst_cac, worst in sources:
        for best in sorted((ch for ch in cac if cac[ch] < worst_cac), key=lambda ch: (cac[ch], ch)):
            amount = round(min(left[worst], room[best]), 2)
            if amount < 0.01:
                continue
            extra = amount / cac[best] - amount / worst_cac
            return (
                Move(
                    f"move ${amount:,.2f} from {worst} (CAC ${worst_cac:,.2f}) to {best} (CAC ${cac[best]:,.2f}): "
                    f"at the measured rates about {extra:,.1f} more customers",
                    amount,
                    worst,
                    best,
                    round(worst_cac, 2),
                    round(cac[best], 2),
                    round(extra, 1),
                ),
                fact,
            )
    best = min(cac, key=lambda ch: (cac[ch], ch))
    return (
        Move(
            f"no channel with a lower measured CAC can absorb more budget in the {days_left} days left (best: {best} "
            f"at ${cac[best]:,.2f}): raise the budget, extend the horizon or lower the goal"
        ),
        fact,
    )


def behind_candidate(
    bp: Blueprint, row: Progress, move: Move, rates: Any, history: pd.DataFrame, count_sql: str
) -> Candidate:
    """The behind-plan insight: statement and call to action from the summary's figures, the progress rows, the
    queries behind them."""
    summary = {
        "blueprint_id": row.blueprint_id,
        "day": row.day.isoformat(),
        "metric": row.metric,
        "segment": row.segment,
        "actual": row.actual,
        "planned": row.planned,
        "planned_lower": row.planned_lower,
        "planned_upper": row.planned_upper,
        "shortfall": round(row.planned - row.actual, 3),
        "days_elapsed": row.days_elapsed,
        "horizon_days": row.horizon_days,
        "spent_usd": row.spent_usd,
        "planned_spend_usd": row.planned_spend_usd,
        "budget_usd": row.budget_usd,
        "move_usd": move.amount_usd,
        "from_channel": move.from_channel,
        "to_channel": move.to_channel,
        "from_cac_usd": move.from_cac_usd,
        "to_cac_usd": move.to_cac_usd,
        "extra_customers": move.extra_customers,
    }
    statement = (
        f"Blueprint {row.blueprint_id} is behind plan on {row.day.isoformat()}: {row.actual:,.0f} {row.metric} in "
        f"{row.segment}, below the trajectory's {row.planned_lower:,.1f}–{row.planned_upper:,.1f} (planned "
        f"{row.planned:,.1f}) on day {row.days_elapsed} of {row.horizon_days}; ${row.spent_usd:,.2f} spent of "
        f"${row.planned_spend_usd:,.2f} planned to date."
    )
    rows = history.copy()
    for col in ("day", "computed_at"):
        if col in rows:
            rows[col] = rows[col].astype(str)
    return Candidate(
        key=key_of("blueprint_behind_plan", row.blueprint_id),
        insight_type="blueprint_behind_plan",
        subject={"blueprint_id": row.blueprint_id, "metric": row.metric, "scope": row.segment},
        objective="acquisition",
        hypothesis=(
            f"The goal metric follows the blueprint's linear trajectory from {row.baseline:,.0f} to "
            f"{row.target:,.0f} within the goal's interval."
        ),
        prompt_id="blueprint.behind_plan",
        facts={},
        call_to_action=move.text[0].upper() + move.text[1:],
        evidence={
            "metric_query": {"sql": count_sql, "source": "checkpoint step", "metrics": [row.metric]},
            "progress_query": {"sql": QUERY, "params": [row.blueprint_id]},
            "rows": [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict(orient="records")],
            "summary": [summary],
            "channel_rates": rates.as_dict() if hasattr(rates, "as_dict") else None,
        },
        effect_size=round(row.actual / row.planned - 1, 6) if row.planned else None,
        ci_low=row.planned_lower,
        ci_high=row.planned_upper,
        direction="lower",
        impact_required=False,
        status="accepted",
        reason="below the trajectory's lower bound",
        statement=statement,
    )


def insight_time(con: duckdb.DuckDBPyConnection, fallback: datetime.datetime) -> datetime.datetime:
    """The behind-plan insight joins the latest insights run (so `mos insights` and the Hub list it with the
    others); with no run yet, it makes one of its own at ``fallback``."""
    latest = insight_tables.latest_run(con) if table_exists(con, "insights", "insights") else None
    return latest if latest is not None else fallback.replace(microsecond=0)


def insights_unwritable(con: duckdb.DuckDBPyConnection) -> str | None:
    """Why the insights tables cannot take the insight (an older table without the Hub's columns), or None."""
    for table, needed in (
        ("insights", insight_tables.INSIGHT_COLUMNS),
        ("notifications", insight_tables.NOTIFICATION_BASE_COLUMNS),
    ):
        have = set(columns_of(con, "insights", table))
        missing = [c for c in needed if c not in have]
        if have and missing:
            return f"insights.{table} lacks column(s) {', '.join(missing)} (built before the Insights Hub?)"
    return None


@dataclass
class BehindReport:
    """The behind-plan insight and the owner's notification, computed before the step's write transaction."""

    candidate: Candidate
    created_at: datetime.datetime
    notification: dict[str, Any]

    @property
    def insight_id(self) -> str:
        return self.candidate.insight_id(self.created_at)

    def write(self, con: duckdb.DuckDBPyConnection) -> None:
        insight_tables.ensure_tables(con)
        insight_tables.write_insights(con, [self.candidate], self.created_at)
        insight_tables.write_notification(con, self.notification)


def behind_report(
    con: duckdb.DuckDBPyConnection,
    bp: Blueprint,
    settings: BlueprintSettings,
    row: Progress,
    count_sql: str,
) -> BehindReport | str:
    """The insight (its id also set on ``row``) and notification for a behind-plan day, or why they cannot be
    written."""
    why = insights_unwritable(con)
    if why is not None:
        return f"behind-plan insight not written: {why}"
    move, rates = recommend(con, bp, settings, row.day)
    history = read(con, bp.blueprint_id)
    current = pd.DataFrame([asdict(row)])
    if not history.empty:
        history = history[pd.to_datetime(history["day"]).dt.date != row.day]
    history = pd.concat([history, current]) if not history.empty else current
    candidate = behind_candidate(bp, row, move, rates, history, count_sql)
    created_at = insight_time(con, row.computed_at)
    row.insight_id = candidate.insight_id(created_at)
    owner = bp.approval.by if bp.approval is not None else None
    notification = {
        "notification_id": hashlib.sha256(f"{owner}|{row.insight_id}|{row.day}".encode()).hexdigest()[:16],
        "created_at": row.computed_at,
        "source": "blueprint",
        "severity": "warning",
        "subject": f"{bp.blueprint_id}/progress",
        "title": f"Blueprint {bp.blueprint_id} is behind plan",
        "message": candidate.statement or "",
        "metric": row.metric,
        "figure": row.actual,
        "previous_figure": row.planned_lower,
        "suggested_action": candidate.call_to_action,
        "reader_id": owner,
        "insight_id": row.insight_id,
        "insight_key": candidate.key,
        "insight_type": candidate.insight_type,
    }
    return BehindReport(candidate, created_at, notification)
