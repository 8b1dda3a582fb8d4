"""The goal: computed, not guessed. Baseline of the goal metric in the segment + what the budget can buy within the
horizon at each channel's measured rate (with its interval), the arithmetic written out as lines a marketer can
check. An unreachable target says so and offers the budget or the horizon that would reach it."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mos_pipelines.blueprint.context import Fact
from mos_pipelines.blueprint.objective import DAYS_PER_MONTH, Objective
from mos_pipelines.blueprint.rates import draw
from mos_pipelines.configuration.blueprint import BlueprintSettings


class GoalError(ValueError):
    """No goal can be computed from this warehouse (the reason says what is missing)."""


@dataclass(frozen=True)
class ChannelRate:
    channel: str
    cost_usd: float
    outcomes: float
    per_dollar: float  # posterior mean
    per_dollar_lower: float
    per_dollar_upper: float
    daily_cost_usd: float
    cap_usd: float | None = None  # a limit besides the spend multiple (e.g. the emailable audience)
    cap_note: str = ""
    # the marketing mix model's diminishing returns: (multiple of today's spend, outcome relative to today's) points;
    # None: the measured rate holds at any spend (linear)
    response: tuple[tuple[float, float], ...] | None = None


def relative_response(points: tuple[tuple[float, float], ...], multiple: float) -> float:
    """The outcome at ``multiple`` × today's spend relative to today's, interpolated between the curve's points and
    continued past the last one at its last slope (never falling)."""
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    if multiple <= xs[-1]:
        return float(np.interp(multiple, xs, ys))
    slope = max(0.0, (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])) if len(xs) > 1 else 0.0
    return float(ys[-1] + slope * (multiple - xs[-1]))


def effective_spend(rate: ChannelRate, spend: float, horizon_days: int) -> float:
    """The spend the measured rate applies to: ``spend`` itself without a response curve; with one, today's spend
    over the horizon × the curve's relative outcome at this spend (so the rate holds at today's level and each
    further dollar buys less)."""
    today = rate.daily_cost_usd * horizon_days
    if rate.response is None or today <= 0 or spend <= 0:
        return spend
    return today * relative_response(rate.response, spend / today)


@dataclass(frozen=True)
class Allocation:
    channel: str
    budget_usd: float
    capacity_usd: float
    expected: float
    lower: float
    upper: float


@dataclass
class Goal:
    metric: str
    baseline: int
    status: str  # reachable | unreachable
    expected_gain: float
    gain_lower: float
    gain_upper: float
    target_value: int
    needed_gain: int | None
    allocations: list[Allocation]
    unspent_usd: float
    lines: list[str] = field(default_factory=list)
    offers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "status": self.status,
            "baseline": self.baseline,
            "target": self.target_value,
            "expected_gain": round(self.expected_gain, 1),
            "gain_interval": [round(self.gain_lower, 1), round(self.gain_upper, 1)],
            "needed_gain": self.needed_gain,
            "unspent_usd": round(self.unspent_usd, 2),
            "statement": self.statement(),
            "arithmetic": self.lines,
            **({"offers": self.offers} if self.offers else {}),
        }

    def statement(self) -> str:
        pct = 100 * (self.target_value - self.baseline) / self.baseline if self.baseline else None
        change = f"{pct:+.1f} %" if pct is not None else f"+{self.target_value - self.baseline:,}"
        buys = (
            f"the budget buys {self.expected_gain:,.0f} [{self.gain_lower:,.0f}–{self.gain_upper:,.0f}] at the "
            "measured cost per customer"
        )
        head = f"{change} {self.metric}, from {self.baseline:,} to {self.target_value:,}, because {buys}"
        if self.needed_gain is not None and self.status == "reachable":
            return (
                f"{change} {self.metric}, from {self.baseline:,} to {self.target_value:,} (the target asked): "
                f"within reach, {buys} (expected {self.baseline + round(self.expected_gain):,})"
            )
        if self.status == "unreachable":
            return f"Unreachable: {head}, short of the +{self.needed_gain:,} asked. " + " ".join(self.offers)
        return head


def _rates(
    fact: Fact, objective: Objective, settings: BlueprintSettings, size: Fact | None, left_out: list[str] | None = None
) -> list[ChannelRate]:
    """The channels a dollar can be planned on; ``left_out`` receives a line for each channel with cost but no
    outcome in the window (its rate would come from the prior alone, so nothing measured justifies buying it)."""
    if not fact.available:
        raise GoalError(f"no channel rates: {fact.reason}")
    out = []
    emailable = (size.value or {}).get("emailable_not_paying") if size is not None and size.available else None
    for c in fact.value["channels"]:
        if "per_dollar" not in c or c["channel"] in objective.constraints.excluded_channels:
            continue
        if c["outcomes"] <= 0:
            if left_out is not None:
                left_out.append(
                    f"  {c['channel']}: 0 {fact.value['measure']} / ${c['cost_usd']:,.0f} in the window: left out "
                    "(its rate would come from the prior alone)"
                )
            continue
        cac = c["cac_usd"]["mean"]
        if objective.constraints.max_cac_usd is not None and (cac is None or cac > objective.constraints.max_cac_usd):
            continue
        cap, note = None, ""
        if c["channel"] == settings.plan.email_channel and emailable is not None and c.get("cost_per_send_usd"):
            sends = settings.plan.nurture_sends_per_person
            cap = emailable * sends * c["cost_per_send_usd"]
            note = f"{emailable:,} not yet paying × {sends} sends × ${c['cost_per_send_usd']:.4f}"
        out.append(
            ChannelRate(
                c["channel"],
                c["cost_usd"],
                c["outcomes"],
                c["per_dollar"]["mean"],
                c["per_dollar"]["lower"],
                c["per_dollar"]["upper"],
                c["daily_cost_usd"],
                cap,
                note,
            )
        )
    if not out:
        why = []
        if objective.constraints.excluded_channels:
            why.append(f"excluded: {', '.join(objective.constraints.excluded_channels)}")
        if objective.constraints.max_cac_usd is not None:
            why.append(f"CAC cap ${objective.constraints.max_cac_usd:,.0f}")
        raise GoalError(
            f"no channel with cost and {fact.value['measure']} above 0 in the trailing "
            f"{fact.value['window']['days']} days "
            f"({fact.value['window']['start']} to {fact.value['window']['end']}) for "
            f"{objective.segment_text()}{' (' + '; '.join(why) + ')' if why else ''}: "
            "nothing measures what a dollar buys"
        )
    return out


def capacity(rate: ChannelRate, horizon_days: int, settings: BlueprintSettings) -> float:
    """The most a channel can absorb within the horizon: ``max_spend_multiple`` × its trailing daily cost."""
    cap = settings.goal.max_spend_multiple * rate.daily_cost_usd * horizon_days
    return min(cap, rate.cap_usd) if rate.cap_usd is not None else cap


def best_first(rates: list[ChannelRate]) -> list[ChannelRate]:
    """The channels with the most customers per dollar first (the order the goal allocates and draws in)."""
    return sorted(rates, key=lambda r: (-r.per_dollar, r.channel))


STEPS = 400  # budget increments of the allocation under response curves


def allocate(
    rates: list[ChannelRate], budget: float, horizon_days: int, settings: BlueprintSettings
) -> list[tuple[ChannelRate, float, float]]:
    """Greedy: the channel with the most customers per dollar first, up to its capacity; then the next. With the
    marketing mix model's curves (any rate with a ``response``): the budget in small steps, each to the channel whose
    next step buys most, so marginal returns are equalised (optimal for concave curves) within the capacities."""
    if any(r.response is not None for r in rates):
        return _allocate_marginal(rates, budget, horizon_days, settings)
    left = budget
    out = []
    for rate in best_first(rates):
        cap = capacity(rate, horizon_days, settings)
        spend = min(left, cap)
        out.append((rate, round(spend, 2), round(cap, 2)))
        left -= spend
    return out


def _allocate_marginal(
    rates: list[ChannelRate], budget: float, horizon_days: int, settings: BlueprintSettings
) -> list[tuple[ChannelRate, float, float]]:
    ordered = best_first(rates)
    caps = [capacity(r, horizon_days, settings) for r in ordered]
    spend = [0.0] * len(ordered)
    step = budget / STEPS if budget > 0 else 0.0

    def gain(i: int, amount: float) -> float:
        r = ordered[i]
        return r.per_dollar * (
            effective_spend(r, spend[i] + amount, horizon_days) - effective_spend(r, spend[i], horizon_days)
        )

    left = budget
    while left > 1e-9 and step > 0:
        room = [(i, min(step, left, caps[i] - spend[i])) for i in range(len(ordered)) if caps[i] - spend[i] > 1e-9]
        if not room:
            break
        best, amount = max(room, key=lambda item: (gain(item[0], item[1]) / item[1], -item[0]))
        spend[best] += amount
        left -= amount
    return [(r, round(spend[i], 2), round(caps[i], 2)) for i, r in enumerate(ordered)]


def expected_gain(rates: list[ChannelRate], budget: float, horizon_days: int, settings: BlueprintSettings) -> float:
    return sum(
        effective_spend(r, spend, horizon_days) * r.per_dollar
        for r, spend, _ in allocate(rates, budget, horizon_days, settings)
    )


def with_response_curves(rates: list[ChannelRate], fact: Fact | None) -> tuple[list[ChannelRate], str | None]:
    """The rates with the marketing mix model's curve of each channel it modelled (``context.response_curves``),
    and the fit they come from (None: no converged model, every rate stays linear)."""
    if fact is None or not fact.available or not fact.value:
        return rates, None
    curves = fact.value.get("relative_response") or {}
    out = [
        dataclasses.replace(r, response=tuple((float(x), float(y)) for x, y in curves[r.channel]))
        if r.channel in curves
        else r
        for r in rates
    ]
    return out, str(fact.value.get("fit_id"))


def needed_gain(objective: Objective, baseline: int) -> int | None:
    t = objective.target
    if t is None:
        return None
    if t.kind == "relative":
        return math.ceil(baseline * t.value / 100 - 1e-9)
    if t.kind == "additional":
        return math.ceil(t.value)
    return max(0, math.ceil(t.value - baseline))


def compute_goal(objective: Objective, facts: dict[str, Fact], settings: BlueprintSettings) -> Goal:
    """The goal of ``objective`` from the facts of ``context.gather``."""
    base = facts["goal_baseline"]
    if not base.available:
        raise GoalError(f"no baseline for {objective.metric}: {base.reason}")
    baseline = int(base.value["baseline"])
    left_out: list[str] = []
    rates = _rates(facts["channel_rates"], objective, settings, facts.get("segment_size"), left_out)
    rates, mmm_fit = with_response_curves(rates, facts.get("response_curves"))
    horizon = objective.horizon_days
    plan = allocate(rates, objective.budget_usd, horizon, settings)

    g = settings.goal
    rng = np.random.default_rng(g.seed)
    total = np.zeros(g.draws)
    allocations = []
    tail = (1 - g.interval) / 2
    for rate, spend, cap in plan:
        bought = effective_spend(rate, spend, horizon)
        sample = draw(rate.outcomes, rate.cost_usd, g.prior_shape, g.prior_cost_usd, g.draws, rng) * bought
        total += sample
        allocations.append(
            Allocation(
                rate.channel,
                spend,
                cap,
                bought * rate.per_dollar,
                float(np.quantile(sample, tail)),
                float(np.quantile(sample, 1 - tail)),
            )
        )
    mean = float(sum(a.expected for a in allocations))
    lower, upper = float(np.quantile(total, tail)), float(np.quantile(total, 1 - tail))
    spent = sum(a.budget_usd for a in allocations)
    unspent = round(objective.budget_usd - spent, 2)

    need = needed_gain(objective, baseline)
    status = "reachable" if need is None or mean >= need else "unreachable"
    target_value = baseline + (need if need is not None and status == "reachable" else round(mean))

    window = facts["channel_rates"].value["window"]
    measure = facts["channel_rates"].value["measure"]
    pct = round(100 * g.interval)
    lines = [
        (
            f"Baseline: {baseline:,} {objective.metric} in {objective.segment_text()} "
            f"({settings.segments.table}, {settings.metrics[objective.metric].where})."
        ),
        (
            f"Rates: {measure} per dollar over {window['days']} days ({window['start']} to {window['end']}), "
            f"{pct} % interval from a Gamma–Poisson posterior:"
        ),
    ]
    for rate, _, cap in sorted(plan, key=lambda x: x[0].channel):
        lines.append(
            f"  {rate.channel}: {rate.outcomes:,.1f} / ${rate.cost_usd:,.0f} = CAC ${1 / rate.per_dollar:,.2f} "
            f"[${1 / rate.per_dollar_upper:,.2f}–${1 / rate.per_dollar_lower:,.2f}]; absorbs up to "
            f"{g.max_spend_multiple:g} × ${rate.daily_cost_usd:,.2f}/day × {horizon} days = "
            f"{_usd(g.max_spend_multiple * rate.daily_cost_usd * horizon)}"
            + (
                f", capped at {_usd(cap)} by the emailable audience ({rate.cap_note})"
                if rate.cap_usd is not None and abs(cap - rate.cap_usd) < 0.005
                else ""
            )
        )
    lines.extend(left_out)
    if mmm_fit is None:
        lines.append("Allocation, lowest CAC first up to each channel's capacity:")
    else:
        for rate in sorted((r for r in rates if r.response is not None), key=lambda r: r.channel):
            lines.append(
                f"  {rate.channel}: diminishing returns (marketing mix model, fit {mmm_fit}): at 2× today's spend "
                f"{relative_response(rate.response, 2.0):.2f}× today's {measure}"  # type: ignore[arg-type]
            )
        lines.append(
            "Allocation, each step of the budget to the channel whose next dollar buys most under the marketing mix "
            "model's curves (linear where it has none), up to each channel's capacity:"
        )
    for a in allocations:
        if a.budget_usd > 0:
            lines.append(
                f"  {a.channel}: {_usd(a.budget_usd)} / {_usd(a.budget_usd / a.expected if a.expected else 0)} = "
                f"{a.expected:,.1f} [{a.lower:,.1f}–{a.upper:,.1f}]"
            )
    lines.append(
        f"Budget ${objective.budget_usd:,.0f} buys {mean:,.1f} [{lower:,.1f}–{upper:,.1f}] {measure} "
        f"({pct} % interval, {g.draws:,} seeded draws)"
        + (
            f"; ${unspent:,.0f} cannot be spent within {horizon} days at up to {g.max_spend_multiple:g}× "
            "each channel's trailing cost"
            if unspent > 0.5
            else ""
        )
        + "."
    )
    if need is not None and objective.target is not None:
        lines.append(
            f"Target: +{need:,} ({objective.target.kind} {objective.target.value:g}"
            f"{' %' if objective.target.kind == 'relative' else ''}); expected {mean:,.1f} "
            f"{'≥' if status == 'reachable' else '<'} {need:,}: {status}."
        )
    lines.append(f"Goal: {baseline:,} + {target_value - baseline:,} = {target_value:,}.")

    goal = Goal(objective.metric, baseline, status, mean, lower, upper, target_value, need, allocations, unspent, lines)
    if status == "unreachable" and need is not None:
        goal.offers = _offers(rates, objective, need, settings)
    return goal


def _usd(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _offers(rates: list[ChannelRate], objective: Objective, need: int, settings: BlueprintSettings) -> list[str]:
    """The budget (same horizon) and the horizon (same budget) that would reach ``need``."""
    offers = []
    horizon = objective.horizon_days
    full = sum(capacity(r, horizon, settings) for r in rates)
    if expected_gain(rates, full, horizon, settings) >= need:
        lo, hi = objective.budget_usd, full
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if expected_gain(rates, mid, horizon, settings) >= need else (mid, hi)
        offers.append(
            f"A budget of ${math.ceil(hi / 100) * 100:,.0f} would reach it in {objective.horizon_months:g} months."
        )
    else:
        offers.append(
            f"No budget reaches it in {objective.horizon_months:g} months: the channels absorb at most "
            f"${full:,.0f} there."
        )
    for months in range(1, settings.goal.max_horizon_months + 1):
        days = round(months * DAYS_PER_MONTH)
        if days > horizon and expected_gain(rates, objective.budget_usd, days, settings) >= need:
            offers.append(f"A horizon of {months} months would reach it with ${objective.budget_usd:,.0f}.")
            break
    else:
        offers.append(
            f"No horizon up to {settings.goal.max_horizon_months} months reaches it with ${objective.budget_usd:,.0f}."
        )
        if offers[0].startswith("No budget"):  # neither alone: the shortest horizon where some budget does
            for months in range(1, settings.goal.max_horizon_months + 1):
                days = round(months * DAYS_PER_MONTH)
                room = sum(capacity(r, days, settings) for r in rates)
                if days > horizon and expected_gain(rates, room, days, settings) >= need:
                    lo, hi = 0.0, room
                    for _ in range(60):
                        mid = (lo + hi) / 2
                        lo, hi = (lo, mid) if expected_gain(rates, mid, days, settings) >= need else (mid, hi)
                    offers.append(f"Both would: ${math.ceil(hi / 100) * 100:,.0f} over {months} months.")
                    break
    return offers


@dataclass
class Recomputed:
    """What the steps' budgets buy as the file stands now (after a person's edits), at the rates of the context the
    goal was computed from."""

    expected: float
    lower: float
    upper: float
    goal_expected: float | None  # what the file's goal says
    lines: list[str]

    @property
    def changed(self) -> bool:
        return self.goal_expected is None or abs(self.expected - self.goal_expected) >= 0.05


def recompute(
    objective: Objective, steps: Any, facts: dict[str, Fact], settings: BlueprintSettings, goal: dict[str, Any]
) -> Recomputed:
    """The expected gain of the plan's own spending steps: each channel's budget (``channel_budget`` steps, and
    ``nurture_email`` on the email channel) at its measured rate, up to what the channel absorbs within the horizon;
    a dollar above that, or on a channel without a measured rate, buys nothing that was measured."""
    rates = {r.channel: r for r in _rates(facts["channel_rates"], objective, settings, facts.get("segment_size"))}
    spend: dict[str, float] = {}
    for step in steps:
        if step.type in ("channel_budget", "nurture_email") and step.budget_usd > 0:
            channel = str(step.params.get("channel"))
            spend[channel] = spend.get(channel, 0.0) + step.budget_usd
    g = settings.goal
    rng = np.random.default_rng(g.seed)
    tail = (1 - g.interval) / 2
    total = np.zeros(g.draws)
    mean = 0.0
    lines = []
    # the same order as compute_goal draws in, so an unedited plan reproduces the goal's figures exactly
    for rate in best_first(list(rates.values())):
        cap = round(capacity(rate, objective.horizon_days, settings), 2)
        amount = spend.pop(rate.channel, 0.0)
        counted = min(amount, cap)
        sample = draw(rate.outcomes, rate.cost_usd, g.prior_shape, g.prior_cost_usd, g.draws, rng) * counted
        total += sample
        mean += counted * rate.per_dollar
        if amount > 0:
            lines.append(
                f"  {rate.channel}: {_usd(counted)} / {_usd(1 / rate.per_dollar)} = {counted * rate.per_dollar:,.1f} "
                f"[{np.quantile(sample, tail):,.1f}–{np.quantile(sample, 1 - tail):,.1f}]"
                + (
                    f"; {_usd(amount - cap)} above what it absorbs ({_usd(cap)}) buys nothing measured"
                    if amount > cap
                    else ""
                )
            )
    for channel, amount in sorted(spend.items()):
        lines.append(f"  {channel}: {_usd(amount)} on a channel without a measured rate: buys nothing measured")
    expected = goal.get("expected_gain")
    return Recomputed(
        mean,
        float(np.quantile(total, tail)),
        float(np.quantile(total, 1 - tail)),
        None if expected is None else float(expected),
        lines,
    )
