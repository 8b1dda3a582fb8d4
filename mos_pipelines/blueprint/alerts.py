"""Regression alerts on blueprint step runs: a run more than ``slower_factor`` × slower, or ``costlier_factor`` ×
costlier, than the median of the step's last ``history_runs`` successful runs (same blueprint, any run, any
revision) writes a notification to the blueprint's owner (the approver) in ``insights.notifications`` and fails
the step's non-blocking ``no_regression`` check in Dagster (``defs/blueprint``).

Durations are ``finished_at − started_at`` of ``ops.step_runs``; $ is its ``cost_usd``. Medians are floored at
``min_seconds`` / ``min_cost_usd``: a step that usually takes 0.05 s and once takes 0.2 s is noise, not a regression.
With fewer than ``min_history`` earlier successful runs, nothing is judged and the check says so.
"""

from __future__ import annotations

import datetime
import hashlib
import statistics
from dataclasses import dataclass, field
from typing import Any

import duckdb

from mos_pipelines.blueprint.ledger import StepRun
from mos_pipelines.blueprint.plan import Blueprint
from mos_pipelines.configuration.blueprint import AlertSettings
from mos_pipelines.insights import insight_tables
from mos_pipelines.warehouse import table_exists

HISTORY_SQL = """select run_id, started_at, epoch(finished_at) - epoch(started_at) as seconds, cost_usd
from ops.step_runs
where blueprint_id = ? and step_id = ? and status = 'ok' and run_id <> ? and finished_at is not null
  and started_at <= ?
order by started_at desc, run_id desc
limit ?"""


@dataclass(frozen=True)
class Figure:
    """One figure of this run against its history: ``this`` vs the ``median`` of ``n`` runs."""

    metric: str  # duration_seconds | cost_usd
    this: float
    median: float
    n: int
    factor: float  # the threshold multiple
    floor: float  # the median is taken as at least this

    @property
    def ratio(self) -> float | None:
        base = max(self.median, self.floor)
        return self.this / base if base > 0 else None

    @property
    def regressed(self) -> bool:
        return self.ratio is not None and self.ratio > self.factor

    def text(self) -> str:
        unit = (lambda v: f"{v:,.2f} s") if self.metric == "duration_seconds" else (lambda v: f"${v:,.2f}")
        ratio = f"{self.ratio:.2f}×" if self.ratio is not None else "n/a"
        return (
            f"{self.metric.replace('_', ' ')}: this run {unit(self.this)} vs median {unit(self.median)} of the last "
            f"{self.n} successful run(s) ({ratio}; alert above {self.factor:g}×"
            + (f", median floored at {unit(self.floor)}" if self.median < self.floor else "")
            + ")"
        )


@dataclass
class Regression:
    """The verdict on one step run."""

    blueprint_id: str
    step_id: str
    run_id: str
    history: int  # earlier successful runs found (at most history_runs)
    figures: list[Figure] = field(default_factory=list)
    reason: str | None = None  # why nothing was judged
    notification_id: str | None = None

    @property
    def regressed(self) -> list[Figure]:
        return [f for f in self.figures if f.regressed]

    @property
    def passed(self) -> bool:
        return not self.regressed

    def lines(self) -> list[str]:
        if self.reason:
            return [self.reason]
        return [("REGRESSION " if f.regressed else "") + f.text() for f in self.figures]

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"history_runs": self.history, "detail": "; ".join(self.lines())}
        for f in self.figures:
            out[f"{f.metric}_this_run"] = round(f.this, 6)
            out[f"{f.metric}_median"] = round(f.median, 6)
        if self.notification_id:
            out["notification_id"] = self.notification_id
        return out


def _seconds(row: StepRun) -> float:
    assert row.finished_at is not None
    return (row.finished_at - row.started_at).total_seconds()


def judge(con: duckdb.DuckDBPyConnection, row: StepRun, settings: AlertSettings) -> Regression:
    """This run's duration and $ against the median of the step's last successful runs before it."""
    verdict = Regression(row.blueprint_id, row.step_id, row.run_id, 0)
    if row.status != "ok" or row.finished_at is None:
        verdict.reason = f"not judged: the run is {row.status} (only successful runs are compared)"
        return verdict
    if not table_exists(con, "ops", "step_runs"):
        verdict.reason = "not judged: ops.step_runs does not exist"
        return verdict
    history = con.execute(
        HISTORY_SQL, [row.blueprint_id, row.step_id, row.run_id, row.started_at, settings.history_runs]
    ).fetchall()
    verdict.history = len(history)
    if len(history) < settings.min_history:
        verdict.reason = (
            f"not judged: {len(history)} earlier successful run(s) of {row.step_id}, "
            f"{settings.min_history} needed (alerts.min_history)"
        )
        return verdict
    seconds = statistics.median(float(h[2]) for h in history)
    cost = statistics.median(float(h[3] or 0) for h in history)
    verdict.figures = [
        Figure("duration_seconds", _seconds(row), seconds, len(history), settings.slower_factor, settings.min_seconds),
        Figure("cost_usd", float(row.cost_usd), cost, len(history), settings.costlier_factor, settings.min_cost_usd),
    ]
    return verdict


def notification_id(verdict: Regression) -> str:
    key = f"blueprint_regression|{verdict.blueprint_id}|{verdict.step_id}|{verdict.run_id}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def notify(
    con: duckdb.DuckDBPyConnection, bp: Blueprint, verdict: Regression, now: datetime.datetime | None = None
) -> str | None:
    """A regressed run → one notification to the blueprint's owner (the approver) naming both figures; the same
    run notifies once however often it is judged."""
    bad = verdict.regressed
    if not bad:
        return None
    owner = bp.approval.by if bp.approval is not None else None
    first = bad[0]
    verdict.notification_id = insight_tables.write_notification(
        con,
        {
            "notification_id": notification_id(verdict),
            "created_at": now or datetime.datetime.now(datetime.UTC),
            "source": "blueprint",
            "severity": "warning",
            "subject": f"{verdict.blueprint_id}/{verdict.step_id}",
            "title": f"Blueprint step {verdict.step_id} regressed ({', '.join(f.metric for f in bad)})",
            "message": (
                f"Step {verdict.step_id} of blueprint {verdict.blueprint_id} (run {verdict.run_id}): "
                + "; ".join(f.text() for f in bad)
            ),
            "metric": first.metric,
            "figure": first.this,
            "previous_figure": first.median,
            "suggested_action": (
                f"Open the run in Dagster and `mos blueprint status {verdict.blueprint_id}`: compare this run's "
                "detail and cost split with the previous ones"
            ),
            "reader_id": owner,
            "insight_type": "blueprint_regression",
            "insight_key": f"blueprint_regression|{verdict.blueprint_id}|{verdict.step_id}",
        },
    )
    return verdict.notification_id


def check_run(
    con: duckdb.DuckDBPyConnection,
    bp: Blueprint,
    row: StepRun,
    settings: AlertSettings,
    now: datetime.datetime | None = None,
) -> Regression:
    """Judge the run and notify the owner when it regressed."""
    verdict = judge(con, row, settings)
    notify(con, bp, verdict, now)
    return verdict
