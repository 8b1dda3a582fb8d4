"""Week-over-week anomalies: the last 7 days of a metric (overall and per channel) against the same
weekdays of the weeks before — a seasonal baseline with quasi-Poisson dispersion; revenue under a compound
model of order count × order value (stats.revenue_week_vs_baseline), tested only with ``min_orders`` orders
expected in the week."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd

from mos_pipelines.insights.candidate import Candidate, RunContext, Skip, key_of, money, records
from mos_pipelines.insights.channel_comparisons import EXCLUDED_CHANNELS
from mos_pipelines.insights.effect_statistics import revenue_week_vs_baseline, week_vs_baseline
from mos_pipelines.insights.semantic import Filter

MONEY_METRICS = ("revenue", "cost", "spend")
REVENUE_METRICS = ("revenue",)  # sums of orders: the compound model, with the orders behind them
ORDERS = "conversions"
WEEK_DAYS = 7


def anomalies(ctx: RunContext) -> tuple[list[Candidate], list[Skip]]:
    family = ctx.config.anomaly
    metrics = list(family.metrics)
    for name in metrics:
        if ctx.semantic.metric(name)["type"] != "simple":
            return [], [Skip("anomaly", f"metric '{name}' is not a simple (additive) metric; weekly totals need one")]
    bounds = ctx.semantic.time_bounds(ctx.con, metrics[0])
    if bounds is None:
        return [], [Skip("anomaly", "no data")]
    available = (ctx.window_end - bounds[0]).days + 1
    weeks = min(family.baseline_weeks, available // WEEK_DAYS - 1)
    if weeks < family.min_baseline_weeks:
        return [], [
            Skip(
                "anomaly",
                f"{available} days of data: a week against a seasonal baseline needs "
                f"{WEEK_DAYS * (family.min_baseline_weeks + 1)}",
            )
        ]
    start = ctx.window_end - datetime.timedelta(days=WEEK_DAYS * (weeks + 1) - 1)
    days = pd.date_range(start, ctx.window_end, freq="D").date
    base_where = [Filter("metric_time__day", ">=", start), Filter("metric_time__day", "<=", ctx.window_end)]
    totals = ctx.semantic.run(ctx.con, ctx.semantic.query(["revenue", "sessions", "conversions"], [], base_where))
    revenue = float(totals["revenue"].fillna(0).iloc[0])
    per_unit = {
        "sessions": revenue / max(float(totals["sessions"].fillna(0).iloc[0]), 1.0),
        "conversions": revenue / max(float(totals["conversions"].fillna(0).iloc[0]), 1.0),
    }
    scopes: list[tuple[str, list[Filter]]] = [("overall", [])]
    if family.by_channel:
        channels = ctx.semantic.run(ctx.con, ctx.semantic.query(["sessions"], ["channel"], base_where))["channel"]
        scopes += [(c, [Filter("channel", "=", c)]) for c in sorted(channels.dropna()) if c not in EXCLUDED_CHANNELS]
    with_orders = bool(set(metrics) & set(REVENUE_METRICS)) and ORDERS in ctx.semantic.metrics
    queried = list(dict.fromkeys([*metrics, *([ORDERS] if with_orders else [])]))
    out = []
    for scope, where in scopes:
        query = ctx.semantic.query(queried, ["metric_time__day"], [*base_where, *where])
        rows = ctx.semantic.run(ctx.con, query)
        series = rows.set_index(pd.to_datetime(rows["metric_time__day"]).dt.date).reindex(days)
        orders = series[ORDERS].fillna(0).to_numpy(float) if ORDERS in series else None
        for metric in metrics:
            out.append(
                _candidate(
                    ctx,
                    metric,
                    scope,
                    query,
                    rows,
                    series[metric].fillna(0).to_numpy(float),
                    days,
                    weeks,
                    per_unit,
                    orders,
                )
            )
    return out, []


def _candidate(
    ctx: RunContext,
    metric: str,
    scope: str,
    query,
    rows: pd.DataFrame,
    daily: np.ndarray,
    days: np.ndarray,
    weeks: int,
    per_unit: dict[str, float],
    orders: np.ndarray | None,
) -> Candidate:
    label = ctx.semantic.label(metric).replace(" (USD)", "")
    week_start, week_end = days[-WEEK_DAYS], days[-1]
    scope_text = "overall" if scope == "overall" else f"from {scope.replace('_', ' ')}"
    compound = None
    if metric in REVENUE_METRICS and orders is not None:
        compound = revenue_week_vs_baseline(daily, orders, weeks, ctx.order_value_cv2, ctx.config.confidence_level)
        result = compound.result
    else:
        result = week_vs_baseline(daily, weeks, ctx.config.confidence_level)
    base = daily[:-WEEK_DAYS].reshape(weeks, WEEK_DAYS)
    summary = {
        "metric": metric,
        "scope": scope,
        "week_start": week_start,
        "week_end": week_end,
        "week_days": WEEK_DAYS,
        "observed": result.observed,
        "expected": result.expected,
        "baseline_weeks": weeks,
        "baseline_week_totals": [float(x) for x in base.sum(axis=1)],
        "change": result.change,
    }
    if compound is not None:
        summary.update(
            {"orders_observed": float(orders[-WEEK_DAYS:].sum()), "orders_expected": compound.orders_expected}
        )
    columns = ["metric_time__day", metric, *([ORDERS] if compound is not None and metric != ORDERS else [])]
    candidate = Candidate(
        key=key_of("anomaly", metric, scope),
        insight_type="anomaly",
        subject={
            "metric": metric,
            "scope": scope,
            "channel": None if scope == "overall" else scope,
            "week_end": week_end.isoformat(),
        },
        objective="operations",
        hypothesis=(
            f"{label} {scope_text} in the 7 days to {week_end} differ from the same weekdays of the "
            f"{weeks} weeks before (H0: no change beyond day-to-day noise)."
        ),
        prompt_id="insight.anomaly",
        facts={},
        call_to_action="",
        evidence={
            "metric_query": query.as_evidence(),
            "rows": records(rows[columns]),
            "window": {"start": days[0], "end": week_end, "days": len(days)},
            "summary": [summary],
        },
    )
    events = result.expected if metric not in MONEY_METRICS else float(np.count_nonzero(base)) / weeks
    if result.expected <= 0 or events < ctx.config.min_events:
        candidate.untestable = (
            f"too little data: expected {result.expected:g} {metric} in the week (needs {ctx.config.min_events} events)"
        )
        candidate.statement = f"{label} {scope_text}, week to {week_end}: not tested (too little data)."
        return candidate
    if metric in REVENUE_METRICS and (compound is None or compound.orders_expected < ctx.config.min_orders):
        expected_orders = compound.orders_expected if compound is not None else 0.0
        candidate.untestable = (
            f"too few orders: {expected_orders:.1f} expected in the week behind its revenue "
            f"(needs {ctx.config.min_orders}; one big order would read as a change)"
            if compound is not None
            else f"no {ORDERS} metric to count the orders behind revenue"
        )
        candidate.statement = f"{label} {scope_text}, week to {week_end}: not tested (too few orders)."
        return candidate
    delta = result.observed - result.expected
    impact = abs(delta) if metric in MONEY_METRICS else abs(delta) * per_unit.get(metric, 0.0)
    candidate.evidence["statistics"] = {
        "method": (
            "last 7 days vs the same weekdays of the baseline weeks, as two Poisson rates (score test, MOVER "
            "interval) after dividing both totals by the variance-to-mean ratio: "
            + (
                "compound model of order count × order value, μ·(φ + CV²)"
                if compound is not None
                else "the quasi-Poisson dispersion of the baseline days around their weekday means"
            )
        ),
        "change": result.change,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value,
        "dispersion": result.dispersion,
        "confidence_level": ctx.confidence_pct,
    }
    if compound is not None:
        candidate.evidence["statistics"].update(
            {
                "order_value": compound.order_value,
                "order_value_cv2": compound.cv2,
                "order_count_dispersion": compound.order_dispersion,
                "orders_expected": compound.orders_expected,
            }
        )
    candidate.evidence["impact"] = {
        "usd": money(impact),
        "formula": (
            "|observed − expected|" if metric in MONEY_METRICS else f"|observed − expected| × revenue per {metric[:-1]}"
        ),
        "revenue_per_unit": per_unit.get(metric),
    }
    candidate.effect_size, candidate.ci_low, candidate.ci_high = result.change, result.ci_low, result.ci_high
    candidate.p_value, candidate.impact_usd = result.p_value, money(impact)
    candidate.relative_effect = abs(result.change)
    candidate.direction = "higher" if delta > 0 else "lower"
    is_money = metric in MONEY_METRICS
    candidate.facts = {
        "metric_label": label,
        "scope": scope_text,
        "direction": "rose" if delta > 0 else "fell",
        "change_pct": abs(result.change) * 100,
        "week_end": week_end.isoformat(),
        "prefix": "$" if is_money else "",
        "fmt": ",.0f",
        "observed": result.observed,
        "expected": result.expected,
        "baseline_weeks": weeks,
        "confidence_level": ctx.confidence_pct,
        "ci_low_pct": result.ci_low * 100,
        "ci_high_pct": result.ci_high * 100,
        "week_days": WEEK_DAYS,
        "must_mention": [label.lower()],
    }
    where = "overall" if scope == "overall" else f"for {scope.replace('_', ' ')}"
    if metric == "cost" and delta > 0:
        action = f"Check bids, budgets and new campaigns {where}: cost grew beyond its usual weekly range."
    elif delta < 0:
        action = (
            f"Check tracking and delivery {where} for that week (tags, paused campaigns, budgets, site "
            f"issues) before changing budgets; the channel and region insights show where it happened."
        )
    else:
        action = (
            f"Find what drove the rise {where} (campaigns, offers, seasonality) and whether to scale it; "
            f"check that it is not duplicated tracking."
        )
    candidate.call_to_action = action
    return candidate
