"""Every accepted insight of a simulated world scored against the world's generating truth.

Beside the simulator on purpose: this module reads the truth files the simulator writes (``expected_daily.csv``,
``arm_rates.csv``, ``email_sends.parquet``) and an insights frame (``insights.insights`` rows with their evidence
as dicts); nothing in production imports it, and it imports nothing of the insights pipeline.

Each insight is ``supported`` (the truth has the effect, in the direction the insight states, at least
``min_true_effect`` in size), ``unsupported`` (the truth has no such effect, or the other direction) or
``not_checkable`` (the truth does not say), with the reason and the true effect:

- channel comparison (conversion rate, ROAS, CAC) in a region or across all regions: the channels' expected
  metric over the insight's window and regions (sums of the expected numerators and denominators); the better
  channel must be better by ``min_true_effect``. Within a customer segment: the truth has no segments, so the
  channels are compared over all regions (a channel's rate relative to another does not depend on whose
  sessions they are, except through the regions' planted effects) — counted apart as approximate;
- region comparison: the channel's expected metric in the region against the other regions;
- anomaly: the expected total of the tested week against the mean expected total of the baseline weeks (the
  same weekdays); the change must have the stated sign and be at least ``min_true_effect`` — a change in the
  process, not in its draws;
- budget pacing: the campaign's expected spend over the tested days against its daily budget × days;
- experiment winner: the arms' true click rates (sends-weighted over the regions), or for conversion rate the
  true click rate × conversion rate of a click's session (the email path; other paths are the same in expectation
  for randomised arms);
- holdout lift: treated units get the email's clicks on top of what the holdout does, so a lift above 1 is
  supported when the treated arms have a click rate above 0, and a lift below 1 is not;
- lookalike degradation: not checkable (the truth has no model-quality truth).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SUPPORTED, UNSUPPORTED, NOT_CHECKABLE = "supported", "unsupported", "not_checkable"
MIN_TRUE_EFFECT = 0.05
RATIO_METRICS = {  # insight metric -> (numerator, denominator, higher is better)
    "conversion_rate": ("conversions", "sessions", True),
    "roas": ("revenue_usd", "cost_usd", True),
    "cac": ("cost_usd", "new_customers", False),
}
ADDITIVE_METRICS = {
    "sessions": "sessions",
    "conversions": "conversions",
    "revenue": "revenue_usd",
    "cost": "cost_usd",
    "spend": "cost_usd",
    "orders": "orders",
    "new_customers": "new_customers",
}


@dataclass(frozen=True)
class InsightScore:
    insight_id: str
    insight_type: str
    key: str
    verdict: str  # supported | unsupported | not_checkable
    reason: str
    true_effect: float | None = None  # true ratio in the stated direction (> 1 agrees), or true relative change
    approximate: bool = False  # checked against a coarser truth (segments: all regions)


class ExpectedDaily:
    """``expected_daily.csv`` as an array [day, channel, region, metric] with lookups by date and name."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.dates = sorted(frame["date"].unique())
        self.channels = sorted(frame["channel"].unique())
        self.regions = sorted(frame["region"].unique())
        self.metrics = [c for c in frame.columns if c not in ("day", "date", "channel", "region")]
        index = pd.MultiIndex.from_product([self.dates, self.channels, self.regions])
        values = frame.set_index(["date", "channel", "region"])[self.metrics].reindex(index).fillna(0.0)
        self.values = values.to_numpy(float).reshape(
            len(self.dates), len(self.channels), len(self.regions), len(self.metrics)
        )

    def total(
        self, metric: str, start: str, end: str, channels: list[str] | None = None, regions: list[str] | None = None
    ) -> float | None:
        """Sum of an expected metric over the dates start..end (ISO, inclusive), channels and regions (None: all)."""
        if metric not in self.metrics:
            return None
        days = [i for i, d in enumerate(self.dates) if start <= d <= end]
        ch = [self.channels.index(c) for c in channels] if channels is not None else list(range(len(self.channels)))
        rg = [self.regions.index(r) for r in regions] if regions is not None else list(range(len(self.regions)))
        if not days or not ch or not rg:
            return None
        block = self.values[np.ix_(days, ch, rg, [self.metrics.index(metric)])]
        return float(block.sum())


class WorldTruth:
    """The truth files an insight is scored against (missing files make the insights that need them not checkable)."""

    def __init__(self, truth: Path) -> None:
        expected = truth / "expected_daily.csv"
        self.expected = (
            ExpectedDaily(pd.read_csv(expected, keep_default_na=False, na_values=[""])) if expected.is_file() else None
        )
        arms = truth / "arm_rates.csv"
        self.arm_rates = (
            pd.read_csv(arms, keep_default_na=False, na_values=[""]).set_index(["campaign_id", "variant_id", "region"])
            if arms.is_file()
            else None
        )
        sends = truth / "email_sends.parquet"
        if sends.is_file():
            frame = pd.read_parquet(sends, columns=["campaign_id", "variant_id", "region", "sent"])
            self.send_counts = frame[frame["sent"]].groupby(["campaign_id", "variant_id", "region"]).size()
        else:
            self.send_counts = None


def score_insights(insights: pd.DataFrame, truth: Path, min_true_effect: float = MIN_TRUE_EFFECT) -> list[InsightScore]:
    """Score every row of ``insights`` (accepted or not; filter first) against the world's truth."""
    world = WorldTruth(truth)
    out = []
    for row in insights.itertuples():
        ev = row.evidence if isinstance(row.evidence, dict) else {}
        scorer = SCORERS.get(row.insight_type)
        if scorer is None:
            verdict = (NOT_CHECKABLE, f"no truth for insight type {row.insight_type}", None, False)
        else:
            verdict = scorer(world, ev, row.effect_size, min_true_effect)
        out.append(InsightScore(row.insight_id, row.insight_type, str(ev.get("key", "")), *verdict))
    return out


Verdict = tuple[str, str, float | None, bool]


def _judge(true_ratio: float | None, min_true_effect: float, what: str, approximate: bool = False) -> Verdict:
    """``true_ratio`` > 1 when the truth agrees with the stated direction."""
    if true_ratio is None or not math.isfinite(true_ratio) or true_ratio <= 0:
        return NOT_CHECKABLE, f"the truth has no {what}", None, approximate
    if true_ratio >= 1 + min_true_effect:
        return SUPPORTED, f"true {what} {true_ratio:.3g}× in the stated direction", true_ratio, approximate
    if true_ratio > 1:
        return (
            UNSUPPORTED,
            f"true {what} only {true_ratio:.3g}× in the stated direction (< {1 + min_true_effect:g})",
            true_ratio,
            approximate,
        )
    return UNSUPPORTED, f"true {what} {true_ratio:.3g}×: the other direction or none", true_ratio, approximate


def _window(ev: dict) -> tuple[str, str] | None:
    window = ev.get("window") or {}
    if window.get("start") and window.get("end"):
        return str(window["start"]), str(window["end"])
    return None


def _ratio_value(
    world: WorldTruth, metric: str, window: tuple[str, str], channel: str, regions: list[str]
) -> float | None:
    numerator, denominator, _ = RATIO_METRICS[metric]
    exp = world.expected
    if exp is None or channel not in exp.channels or any(r not in exp.regions for r in regions):
        return None
    num = exp.total(numerator, *window, [channel], regions)
    den = exp.total(denominator, *window, [channel], regions)
    return num / den if num is not None and den else None


def _channel_comparison(world: WorldTruth, ev: dict, effect: float | None, tol: float) -> Verdict:
    s = ev.get("subject") or {}
    metric = s.get("metric")
    if world.expected is None:
        return NOT_CHECKABLE, "truth/expected_daily.csv is missing", None, False
    if metric not in RATIO_METRICS:
        return NOT_CHECKABLE, f"the truth has no {metric}", None, False
    window = _window(ev)
    dimension = s.get("dimension", "region")
    approximate = s.get("slice") != "all" and dimension != "region"
    if window is None:
        return NOT_CHECKABLE, "the insight's evidence has no window", None, False
    if dimension == "region" and s.get("slice") != "all":
        regions = [s["slice"]]
    elif dimension in ("region", "segment"):
        regions = list(world.expected.regions)
    else:
        return NOT_CHECKABLE, f"the truth has no rates by {dimension}", None, False
    better = s.get("better")
    others = [c for c in s.get("channels", []) if c != better]
    if not better or len(others) != 1:
        return NOT_CHECKABLE, "the insight names no better channel", None, False
    a = _ratio_value(world, metric, window, better, regions)
    b = _ratio_value(world, metric, window, others[0], regions)
    if a is None or b is None or a <= 0 or b <= 0:
        return NOT_CHECKABLE, f"the truth has no {metric} for {better} or {others[0]} there", None, approximate
    higher_better = RATIO_METRICS[metric][2]
    return _judge(a / b if higher_better else b / a, tol, f"{metric} ratio", approximate)


def _region_comparison(world: WorldTruth, ev: dict, effect: float | None, tol: float) -> Verdict:
    s = ev.get("subject") or {}
    metric, window = s.get("metric"), _window(ev)
    if world.expected is None:
        return NOT_CHECKABLE, "truth/expected_daily.csv is missing", None, False
    if metric not in RATIO_METRICS or window is None or effect is None:
        return NOT_CHECKABLE, f"the truth has no {metric} (or the insight no window)", None, False
    region = s.get("region")
    others = [r for r in world.expected.regions if r != region]
    a = _ratio_value(world, metric, window, s.get("channel"), [region])
    b = _ratio_value(world, metric, window, s.get("channel"), others)
    if a is None or b is None or a <= 0 or b <= 0:
        return NOT_CHECKABLE, f"the truth has no {metric} for {s.get('channel')} in {region} or elsewhere", None, False
    true = a / b
    return _judge(true if effect >= 1 else 1 / true, tol, f"{metric} ratio (region / others)")


def _anomaly(world: WorldTruth, ev: dict, effect: float | None, tol: float) -> Verdict:
    s = ev.get("subject") or {}
    summary = (ev.get("summary") or [{}])[0]
    column = ADDITIVE_METRICS.get(s.get("metric"))
    exp = world.expected
    if exp is None:
        return NOT_CHECKABLE, "truth/expected_daily.csv is missing", None, False
    if column is None or "week_start" not in summary:
        return NOT_CHECKABLE, f"the truth has no daily {s.get('metric')}", None, False
    channels = None if s.get("scope") == "overall" else [s.get("scope")]
    if channels and channels[0] not in exp.channels:
        return NOT_CHECKABLE, f"the truth has no channel {channels[0]}", None, False
    week_start = datetime.date.fromisoformat(str(summary["week_start"]))
    weeks = int(summary.get("baseline_weeks") or 0)
    if weeks < 1:
        return NOT_CHECKABLE, "the insight has no baseline weeks", None, False
    base_start = week_start - datetime.timedelta(days=7 * weeks)
    if base_start.isoformat() < exp.dates[0]:
        return NOT_CHECKABLE, "the baseline starts before the truth's first day", None, False
    week = exp.total(column, week_start.isoformat(), str(summary["week_end"]), channels)
    base = exp.total(column, base_start.isoformat(), (week_start - datetime.timedelta(days=1)).isoformat(), channels)
    if week is None or not base:
        return NOT_CHECKABLE, f"the truth has no {column} in that week or its baseline", None, False
    change = week / (base / weeks) - 1
    stated = 1 if ev.get("direction") == "higher" else -1
    if stated * change >= tol:
        return SUPPORTED, f"true change {change:+.1%} in the stated direction", change, False
    if stated * change > 0:
        return (
            UNSUPPORTED,
            f"true change only {change:+.1%} (< {tol:.0%}): no real change in the process",
            change,
            False,
        )
    return UNSUPPORTED, f"true change {change:+.1%}: the other direction or none", change, False


def _budget_pacing(world: WorldTruth, ev: dict, effect: float | None, tol: float) -> Verdict:
    s = ev.get("subject") or {}
    summary = (ev.get("summary") or [{}])[0]
    exp = world.expected
    if exp is None:
        return NOT_CHECKABLE, "truth/expected_daily.csv is missing", None, False
    channel, region = s.get("channel"), s.get("region")
    if channel not in exp.channels or region not in exp.regions or not summary.get("daily_budget_usd"):
        return (
            NOT_CHECKABLE,
            f"the truth has no spend of {s.get('campaign_id')} (channel {channel}, region {region})",
            None,
            False,
        )
    spend = exp.total("cost_usd", str(summary["first_day"]), str(summary["last_day"]), [channel], [region])
    planned = float(summary["daily_budget_usd"]) * int(summary["days"])
    if spend is None or planned <= 0:
        return NOT_CHECKABLE, "no expected spend over those days", None, False
    pace = spend / planned
    stated = 1 if ev.get("direction") == "higher" else -1
    if stated * (pace - 1) >= tol:
        return SUPPORTED, f"true pace {pace:.0%} of budget", pace, False
    stated_side = "over" if stated > 0 else "under"
    return UNSUPPORTED, f"true pace {pace:.0%} of budget: not the stated {stated_side}-spend", pace, False


def _arm_value(world: WorldTruth, campaign: str, variants: list[str], regions: list[str], metric: str) -> float | None:
    rates, counts = world.arm_rates, world.send_counts
    if rates is None or counts is None:
        return None
    total = weighted = 0.0
    for v in variants:
        for r in regions:
            if (campaign, v, r) not in rates.index:
                continue
            row = rates.loc[(campaign, v, r)]
            value = float(row["click_rate"]) * (float(row["conversion_rate"]) if metric == "cvr" else 1.0)
            w = float(counts.get((campaign, v, r), 0))
            total += w
            weighted += w * value
    return weighted / total if total else None


def _experiment_winner(world: WorldTruth, ev: dict, effect: float | None, tol: float) -> Verdict:
    s = ev.get("subject") or {}
    metric = s.get("metric")
    if metric not in ("click_rate", "cvr"):
        return NOT_CHECKABLE, f"the truth has no arm {metric}", None, False
    if world.arm_rates is None:
        return NOT_CHECKABLE, "truth/arm_rates.csv is missing", None, False
    regions = sorted(set(r for _, _, r in world.arm_rates.index)) if s.get("region") == "all" else [s.get("region")]
    variant, other = s.get("variant_id"), str(s.get("compared_with", "")).split("+")
    a = _arm_value(world, s.get("campaign_id"), [variant], regions, metric)
    b = _arm_value(world, s.get("campaign_id"), other, regions, metric)
    if a is None or b is None or a <= 0 or b <= 0:
        return NOT_CHECKABLE, f"the truth has no {metric} for the arms of {s.get('campaign_id')}", None, False
    what = "click rate ratio" if metric == "click_rate" else "email-path conversion ratio (click × session rate)"
    return _judge(a / b if s.get("better") == variant else b / a, tol, what)


def _holdout_lift(world: WorldTruth, ev: dict, effect: float | None, tol: float) -> Verdict:
    s = ev.get("subject") or {}
    if world.arm_rates is None:
        return NOT_CHECKABLE, "truth/arm_rates.csv is missing", None, False
    regions = sorted(set(r for _, _, r in world.arm_rates.index)) if s.get("region") == "all" else [s.get("region")]
    variants = [v for v in str(s.get("variant_id", "")).split("+") if v]
    clicks = _arm_value(world, s.get("campaign_id"), variants, regions, "click_rate")
    if clicks is None:
        return NOT_CHECKABLE, f"the truth has no sends of {s.get('campaign_id')} there", None, False
    if s.get("better") == "treated" and clicks > 0:
        return SUPPORTED, f"treated units click at {clicks:.1%} on top of what the holdout does", None, False
    return UNSUPPORTED, f"treated units convert at least as often as the holdout (click rate {clicks:.1%})", None, False


def _lookalike(world: WorldTruth, ev: dict, effect: float | None, tol: float) -> Verdict:
    return NOT_CHECKABLE, "the truth has no model-quality truth for lookalike fits", None, False


SCORERS = {
    "channel_comparison": _channel_comparison,
    "region_comparison": _region_comparison,
    "anomaly": _anomaly,
    "budget_pacing": _budget_pacing,
    "experiment_winner": _experiment_winner,
    "holdout_lift": _holdout_lift,
    "lookalike_degradation": _lookalike,
}


def summarise(scores: list[InsightScore]) -> dict[str, object]:
    """Counts per verdict, the share supported among the checkable, and the not-checkable reasons."""
    counts = {v: sum(s.verdict == v for s in scores) for v in (SUPPORTED, UNSUPPORTED, NOT_CHECKABLE)}
    checkable = counts[SUPPORTED] + counts[UNSUPPORTED]
    reasons: dict[str, int] = {}
    for s in scores:
        if s.verdict == NOT_CHECKABLE:
            reasons[s.reason] = reasons.get(s.reason, 0) + 1
    return {
        **counts,
        "checkable": checkable,
        "supported_share": counts[SUPPORTED] / checkable if checkable else None,
        "approximate": sum(s.approximate for s in scores),
        "not_checkable_reasons": reasons,
    }
