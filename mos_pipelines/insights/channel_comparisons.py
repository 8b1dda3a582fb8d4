"""Channel comparisons from the semantic layer: channel A vs channel B within each slice of the configured
dimensions (regions, customer segments; and across all slices), and a channel in one region vs the same
channel in the other regions — on conversion rate, ROAS (stated as return per dollar) and CAC, with
delta-method intervals over days, each arm's log variance at least its count model's (binomial conversions,
Poisson new customers, compound-Poisson revenue; stats.py). ROAS needs ``min_orders`` orders per arm.
Segments have no cost (spend is not split by segment), so only conversion rates are compared by segment;
residual slices (``residual_slices``: customers without an account) are not compared within."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd

from mos_pipelines.configuration.insights import ChannelComparison
from mos_pipelines.insights.candidate import Candidate, RunContext, Skip, key_of, money, records
from mos_pipelines.insights.effect_statistics import (
    binomial_log_variance,
    compare_ratios,
    compound_log_variance,
    poisson_log_variance,
    ratio_estimate,
)
from mos_pipelines.insights.semantic import Filter

EXCLUDED_CHANNELS = ("unattributed",)
ALL_REGIONS = "all"
BASE_METRICS = ["sessions", "conversions", "new_customers", "revenue", "cost"]  # every summary reports them


@dataclass(frozen=True)
class MetricSpec:
    name: str
    numerator: str
    denominator: str
    better: str  # higher | lower
    objective: str
    label: str
    events: str  # the count behind the metric's noise (min_events applies to it)
    verb: str
    prefix: str
    suffix: str
    fmt: str
    scale: float  # display = value × scale
    ratio_phrase: str
    needs_cost: bool


METRICS = {
    "conversion_rate": MetricSpec(
        "conversion_rate",
        "conversions",
        "sessions",
        "higher",
        "conversion",
        "conversion rate",
        "conversions",
        "converts",
        "",
        " % of sessions",
        ".1f",
        100.0,
        "as often",
        False,
    ),
    "roas": MetricSpec(
        "roas",
        "revenue",
        "cost",
        "higher",
        "acquisition",
        "return on spend",
        "conversions",
        "returns",
        "$",
        " per dollar spent",
        ".2f",
        1.0,
        "as much per dollar",
        True,
    ),
    "cac": MetricSpec(
        "cac",
        "cost",
        "new_customers",
        "lower",
        "acquisition",
        "customer acquisition cost",
        "new_customers",
        "acquires a customer for",
        "$",
        "",
        ",.2f",
        1.0,
        "the cost",
        True,
    ),
}


def _label(channel: str) -> str:
    return channel.replace("_", " ")


def _arm(frame: pd.DataFrame, spec: MetricSpec, cv2: float):
    """The arm's ratio over days, its log variance at least the count model's of the events behind it."""
    estimate = ratio_estimate(frame[spec.numerator].fillna(0).to_numpy(), frame[spec.denominator].fillna(0).to_numpy())
    events = float(frame[spec.events].fillna(0).sum()) if spec.events in frame else 0.0
    if spec.name == "conversion_rate":
        floor = binomial_log_variance(events, estimate.denominator)
    elif spec.name == "roas":
        floor = compound_log_variance(events, cv2)
    else:
        floor = poisson_log_variance(events)
    return estimate.with_floor(floor)


def _shift_share(ctx: RunContext) -> float:
    return ctx.config.shift_share


def _window_filter(ctx: RunContext) -> list[Filter]:
    return [Filter("metric_time__day", ">=", ctx.window_start), Filter("metric_time__day", "<=", ctx.window_end)]


def _summary(name: str, frame: pd.DataFrame, spec: MetricSpec, **labels: str) -> dict:
    num, den = float(frame[spec.numerator].fillna(0).sum()), float(frame[spec.denominator].fillna(0).sum())
    value = num / den if den else None
    return {
        "arm": name,
        **labels,
        spec.numerator: num,
        spec.denominator: den,
        spec.name: value,
        "days": int(len(frame)),
    }


def _untestable(spec: MetricSpec, a: dict, b: dict, min_events: int, min_orders: int) -> str | None:
    for arm in (a, b):
        events = arm.get(spec.events, arm.get(spec.numerator))
        if events is None or events < min_events:
            return f"too little data: {arm['arm']} has {events or 0:g} {spec.events} (< {min_events})"
        if spec.numerator == "revenue" and events < min_orders:
            return (
                f"too few orders: {arm['arm']} has {events:g} {spec.events} behind its revenue (< {min_orders}; "
                "order values are heavy-tailed)"
            )
        if not arm[spec.denominator]:
            return f"no {spec.denominator} for {arm['arm']}"
        if spec.needs_cost and not arm.get("cost"):
            return f"no cost for {arm['arm']}"
    return None


def _impact(
    spec: MetricSpec, better: dict, worse: dict, revenue_per_conversion: float, share: float
) -> tuple[float, str]:
    """$ over the window of moving ``share`` of the weaker arm's volume to the stronger arm's rate."""
    if spec.name == "conversion_rate":
        gap = (better[spec.name] - worse[spec.name]) * worse["sessions"]
        return money(share * abs(gap) * revenue_per_conversion), (
            f"{share:g} × sessions of the weaker arm × |conversion-rate gap| × revenue per conversion (both arms)"
        )
    if spec.name == "roas":
        return money(share * abs(better[spec.name] - worse[spec.name]) * worse["cost"]), (
            f"{share:g} × cost of the weaker arm × |ROAS gap|"
        )
    return money(share * abs(worse[spec.name] - better[spec.name]) * worse["new_customers"]), (
        f"{share:g} × new customers of the weaker arm × |CAC gap|"
    )


def _comparison(
    ctx: RunContext, spec: MetricSpec, a_frame: pd.DataFrame, b_frame: pd.DataFrame, a: dict, b: dict
) -> dict:
    cv2 = ctx.order_value_cv2 if spec.name == "roas" else float("nan")
    arms = (_arm(a_frame, spec, cv2), _arm(b_frame, spec, cv2))
    result = compare_ratios(*arms, ctx.config.confidence_level)
    floor = {"conversion_rate": "binomial", "roas": "compound Poisson (1 + CV²)/orders", "cac": "Poisson"}[spec.name]
    return {
        "method": (
            "ratio of sums per arm; delta-method variance with days as units, at least the "
            f"{floor} variance of the arm's events; Welch t on the log ratio"
        ),
        **({"order_value_cv2": cv2} if spec.name == "roas" else {}),
        "ratio": result.ratio,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value,
        "se_log_ratio": result.se_log,
        "df": result.df,
        "confidence_level": ctx.confidence_pct,
        "effect": f"{spec.name} of {a['arm']} / {spec.name} of {b['arm']}",
    }


def _revenue_per_conversion(frames: list[pd.DataFrame]) -> float:
    conversions = sum(float(f["conversions"].fillna(0).sum()) for f in frames)
    revenue = sum(float(f["revenue"].fillna(0).sum()) for f in frames)
    return revenue / conversions if conversions else 0.0


@dataclass(frozen=True)
class SliceSource:
    """The semantic metrics that answer the comparison's metrics when slicing by ``dimension``: the
    metric itself when its semantic model has the dimension, else ``<metric>_by_<dimension>``."""

    dimension: str
    names: dict[str, str]  # metric the comparison speaks of -> semantic metric queried

    def query(self, ctx: RunContext, metrics: list[str], group_by: list[str], where: list[Filter]):
        wanted = [m for m in dict.fromkeys(metrics) if m in self.names]
        aliases = {self.names[m]: m for m in wanted if self.names[m] != m}
        for m in wanted:  # a ratio's numerator and denominator keep the comparison's names too
            parts = ctx.semantic.components(self.names[m])
            base = ctx.semantic.components(m)
            if parts and base:
                aliases.update({parts[0]: base[0], parts[1]: base[1]})
        return ctx.semantic.query([self.names[m] for m in wanted], group_by, where, aliases=aliases)


def slice_dimensions(family: ChannelComparison) -> list[str]:
    """The dimensions of ``slice_by``, each compared in turn."""
    return list(family.slice_by)


def slice_source(ctx: RunContext, dimension: str, metrics: list[str]) -> SliceSource:
    names = {}
    for metric in dict.fromkeys([*metrics, *BASE_METRICS, "spend"]):
        found = ctx.semantic.metric_for(metric, dimension)
        if found is not None:
            names[metric] = found
    return SliceSource(dimension, names)


def channel_comparisons(ctx: RunContext) -> tuple[list[Candidate], list[Skip]]:
    """Channel A vs channel B within each slice of every ``slice_by`` dimension (and all slices together)."""
    family = ctx.config.channel_comparison
    requested = [m for m in family.metrics if m in METRICS]
    out: list[Candidate] = []
    skips: list[Skip] = []
    for position, dimension in enumerate(slice_dimensions(family)):
        source = slice_source(ctx, dimension, requested)
        if "sessions" not in source.names:
            skips.append(Skip("channel_comparison", f"no semantic model has sessions by '{dimension}'"))
            continue
        metrics = [m for m in requested if m in source.names and (not METRICS[m].needs_cost or "cost" in source.names)]
        missing = [m for m in requested if m not in metrics]
        if missing:
            why = (
                f"the semantic layer has no cost by {dimension} (spend is bought per channel and campaign, "
                "not split by it)"
                if "cost" not in source.names
                else f"no semantic metric answers them by {dimension}"
            )
            skips.append(Skip("channel_comparison", f"{', '.join(missing)} not compared by {dimension}: {why}"))
        slices = _slices(ctx, dimension, source)
        residual = [v for v in slices if v in set(family.residual_slices)]
        if residual:
            skips.append(
                Skip(
                    "channel_comparison",
                    f"channels not compared within {', '.join(residual)} "
                    f"({dimension}): a residual slice of what the data could not "
                    "place, whose share of each channel depends on how that channel's "
                    "visits are identified (residual_slices)",
                )
            )
            slices = [v for v in slices if v not in residual]
        if family.include_all and position == 0:
            slices = [ALL_REGIONS, *slices]  # the all-slices comparison once, under the first dimension
        for slice_value in slices:
            out += _slice_candidates(ctx, source, metrics, slice_value)
    return out, skips


def _slice_candidates(ctx: RunContext, source: SliceSource, metrics: list[str], slice_value: str) -> list[Candidate]:
    dimension = source.dimension
    where = _window_filter(ctx)
    if slice_value != ALL_REGIONS:
        where.append(Filter(dimension, "=", slice_value))
    channels, paid = _channels(ctx, where, source)
    base = [m for m in BASE_METRICS if m in source.names]
    # One query per slice; each pair's evidence is its own query (compiled) and exactly the rows of
    # that query, which are the pair's rows of this one (same filters, same grouping).
    slice_rows = ctx.semantic.run(
        ctx.con,
        source.query(ctx, metrics + base, ["metric_time__day", "channel"], [*where, Filter("channel", "in", channels)]),
    )
    out = []
    for a_channel, b_channel in itertools.combinations(channels, 2):
        query = source.query(
            ctx,
            metrics + base,
            ["metric_time__day", "channel"],
            [*where, Filter("channel", "in", [a_channel, b_channel])],
        )
        rows = slice_rows[slice_rows["channel"].isin([a_channel, b_channel])].reset_index(drop=True)
        frames = {c: rows[rows["channel"] == c] for c in (a_channel, b_channel)}
        rpc = _revenue_per_conversion(list(frames.values()))
        for metric in metrics:
            spec = METRICS[metric]
            if spec.needs_cost and not (a_channel in paid and b_channel in paid):
                continue  # budget metrics compare channels bought with ad spend (see DECISIONS)
            out.append(
                _pair_candidate(ctx, spec, dimension, slice_value, a_channel, b_channel, frames, query, rows, rpc)
            )
    return out


def _scope(dimension: str, slice_value: str) -> str:
    """'across all regions', 'in EU', 'in the mid_account segment'."""
    if slice_value == ALL_REGIONS:
        return "across all regions"
    return f"in {slice_value}" if dimension == "region" else f"in the {slice_value} {dimension}"


def _pair_candidate(
    ctx: RunContext,
    spec: MetricSpec,
    dimension: str,
    slice_value: str,
    a_channel: str,
    b_channel: str,
    frames: dict[str, pd.DataFrame],
    query,
    rows: pd.DataFrame,
    rpc: float,
) -> Candidate:
    columns = ["metric_time__day", "channel", spec.numerator, spec.denominator, spec.name]
    if spec.needs_cost and "cost" not in columns:
        columns.append("cost")
    summaries = {c: _summary(c, frames[c], spec, channel=c) for c in (a_channel, b_channel)}
    for c in summaries:
        for column in ("cost", "conversions", "new_customers", "sessions"):
            if column in frames[c]:  # no cost where the semantic model has none (segments)
                summaries[c][column] = float(frames[c][column].fillna(0).sum())
    scope = _scope(dimension, slice_value)
    key = key_of("channel_comparison", spec.name, dimension, slice_value, a_channel, b_channel)
    subject = {"metric": spec.name, "dimension": dimension, "slice": slice_value, "channels": [a_channel, b_channel]}
    evidence = {
        "metric_query": query.as_evidence(),
        "rows": records(rows[[c for c in rows.columns if c in columns]]),
        "window": {"start": ctx.window_start, "end": ctx.window_end, "days": ctx.days},
    }
    reason = _untestable(spec, summaries[a_channel], summaries[b_channel], ctx.config.min_events, ctx.config.min_orders)
    candidate = Candidate(
        key=key,
        insight_type="channel_comparison",
        subject=subject,
        objective=spec.objective,
        hypothesis=(
            f"The {spec.label} of {_label(a_channel)} differs from {_label(b_channel)}'s {scope} "
            f"(H0: equal; two-sided test on the log ratio)."
        ),
        prompt_id="insight.channel_comparison",
        facts={},
        call_to_action="",
        evidence=evidence,
    )
    if reason:
        candidate.untestable = reason
        candidate.evidence["summary"] = list(summaries.values())
        candidate.statement = (
            f"{scope.capitalize()}: {_label(a_channel)} vs {_label(b_channel)} on "
            f"{spec.label}: not tested (too little data)."
        )
        return candidate
    stats = _comparison(ctx, spec, frames[a_channel], frames[b_channel], summaries[a_channel], summaries[b_channel])
    # Present the better arm first: A is the channel with the better metric.
    a_better = (stats["ratio"] >= 1) == (spec.better == "higher")
    first, second = (a_channel, b_channel) if a_better else (b_channel, a_channel)
    if not a_better:
        stats = {
            **stats,
            "ratio": 1 / stats["ratio"],
            "ci_low": 1 / stats["ci_high"],
            "ci_high": 1 / stats["ci_low"],
            "effect": f"{spec.name} of {first} / {spec.name} of {second}",
        }
    better, worse = summaries[first], summaries[second]
    impact, impact_formula = _impact(spec, better, worse, rpc, _shift_share(ctx))
    candidate.evidence.update(
        {
            "summary": [better, worse],
            "statistics": stats,
            "impact": {"usd": impact, "formula": impact_formula, "revenue_per_conversion": rpc},
        }
    )
    candidate.subject["better"] = first
    candidate.effect_size, candidate.ci_low, candidate.ci_high = stats["ratio"], stats["ci_low"], stats["ci_high"]
    candidate.p_value, candidate.impact_usd = stats["p_value"], impact
    candidate.relative_effect = max(stats["ratio"], 1 / stats["ratio"]) - 1
    candidate.direction = "higher" if spec.better == "higher" else "lower"
    candidate.facts = {
        "scope": scope[0].upper() + scope[1:],
        "a_label": _label(first),
        "b_label": _label(second),
        **_comparison_facts(ctx, spec, better, worse, stats),
        "must_mention": [_label(first), _label(second)],
    }
    where = "" if slice_value == ALL_REGIONS else f" {scope}"
    if spec.needs_cost:
        candidate.call_to_action = (
            f"Shift budget{where} from {_label(second)} toward {_label(first)} in steps, "
            f"and re-check {spec.label} each week before moving more."
        )
    else:
        candidate.call_to_action = (
            f"Send more of your audience{where} through {_label(first)} (calls to action, "
            f"retargeting), and find out why {_label(second)} visits convert less."
        )
    return candidate


def region_comparisons(ctx: RunContext) -> tuple[list[Candidate], list[Skip]]:
    """A channel in one region vs the same channel in all other regions."""
    family = ctx.config.region_comparison
    metrics = [m for m in family.metrics if m in METRICS]
    regions = _slices(ctx, "region")
    if len(regions) < 2:
        return [], [Skip("region_comparison", f"fewer than two known regions in the window ({regions})")]
    out = []
    channels, paid = _channels(ctx, _window_filter(ctx))
    for channel in channels:
        where = [*_window_filter(ctx), Filter("channel", "=", channel), Filter("region", "!=", "unknown")]
        query = ctx.semantic.query(metrics + BASE_METRICS, ["metric_time__day", "region"], where)
        rows = ctx.semantic.run(ctx.con, query)
        for region in regions:
            a_rows = rows[rows["region"] == region]
            b_rows = (
                rows[rows["region"] != region]
                .drop(columns=["region"])
                .groupby("metric_time__day", as_index=False)
                .sum(numeric_only=True)
            )
            rpc = _revenue_per_conversion([a_rows, b_rows])
            for metric in metrics:
                if METRICS[metric].needs_cost and channel not in paid:
                    continue
                out.append(_region_candidate(ctx, METRICS[metric], channel, region, a_rows, b_rows, query, rows, rpc))
    return out, []


def _region_candidate(
    ctx: RunContext,
    spec: MetricSpec,
    channel: str,
    region: str,
    a_rows: pd.DataFrame,
    b_rows: pd.DataFrame,
    query,
    rows: pd.DataFrame,
    rpc: float,
) -> Candidate:
    a = _summary(region, a_rows, spec, channel=channel, region=region)
    b = _summary("other regions", b_rows, spec, channel=channel, region="other regions")
    for arm, frame in ((a, a_rows), (b, b_rows)):
        for column in ("cost", "conversions", "new_customers", "sessions"):
            arm[column] = float(frame[column].fillna(0).sum())
    key = key_of("region_comparison", spec.name, channel, region)
    columns = ["metric_time__day", "region", spec.numerator, spec.denominator, spec.name, "cost"]
    candidate = Candidate(
        key=key,
        insight_type="region_comparison",
        subject={"metric": spec.name, "channel": channel, "region": region},
        objective=spec.objective,
        hypothesis=(
            f"The {spec.label} of {_label(channel)} in {region} differs from its {spec.label} in the other "
            f"regions (H0: equal; two-sided test on the log ratio)."
        ),
        prompt_id="insight.region_comparison",
        facts={},
        call_to_action="",
        evidence={
            "metric_query": query.as_evidence(),
            "rows": records(rows[[c for c in rows.columns if c in columns]]),
            "window": {"start": ctx.window_start, "end": ctx.window_end, "days": ctx.days},
            "summary": [a, b],
        },
    )
    reason = _untestable(spec, a, b, ctx.config.min_events, ctx.config.min_orders)
    if reason:
        candidate.untestable = reason
        candidate.statement = f"{_label(channel)} in {region} vs other regions on {spec.label} — not tested ({reason})."
        return candidate
    stats = _comparison(ctx, spec, a_rows, b_rows, a, b)
    share = _shift_share(ctx)
    impact = money(
        share
        * abs(a[spec.name] - b[spec.name])
        * (
            a["sessions"] * rpc
            if spec.name == "conversion_rate"
            else a["cost"]
            if spec.name == "roas"
            else a["new_customers"]
        )
    )
    candidate.evidence.update(
        {
            "statistics": stats,
            "impact": {
                "usd": impact,
                "revenue_per_conversion": rpc,
                "formula": {
                    "conversion_rate": f"{share:g} × sessions in the region × |conversion-rate gap| × revenue per "
                    "conversion",
                    "roas": f"{share:g} × cost in the region × |ROAS gap|",
                    "cac": f"{share:g} × new customers in the region × |CAC gap|",
                }[spec.name],
            },
        }
    )
    better = (stats["ratio"] >= 1) == (spec.better == "higher")
    candidate.effect_size, candidate.ci_low, candidate.ci_high = stats["ratio"], stats["ci_low"], stats["ci_high"]
    candidate.p_value, candidate.impact_usd = stats["p_value"], impact
    candidate.relative_effect = max(stats["ratio"], 1 / stats["ratio"]) - 1 if stats["ratio"] > 0 else None
    candidate.direction = "higher" if stats["ratio"] >= 1 else "lower"
    candidate.subject["better"] = region if better else "other regions"
    candidate.facts = {
        "a_label": _label(channel).capitalize(),
        "region": region,
        **_comparison_facts(ctx, spec, a, b, stats),
        "must_mention": [_label(channel), region],
    }
    if better:
        candidate.call_to_action = (
            f"Grow {_label(channel)} in {region}: give it more budget or audience there "
            f"first, and carry what works in {region} to the other regions."
        )
    else:
        candidate.call_to_action = (
            f"Review {_label(channel)} in {region} (targeting, landing pages, offer); "
            f"move budget to regions where it performs better until it recovers."
        )
    return candidate


def _comparison_facts(ctx: RunContext, spec: MetricSpec, a: dict, b: dict, stats: dict) -> dict:
    """The facts a comparison's statement shows: both arms' metric as displayed, the ratio and its interval."""
    return {
        "verb": spec.verb,
        "prefix": spec.prefix,
        "suffix": spec.suffix,
        "fmt": spec.fmt,
        "a_display": a[spec.name] * spec.scale,
        "b_display": b[spec.name] * spec.scale,
        "ratio": stats["ratio"],
        "ratio_phrase": spec.ratio_phrase,
        "confidence_level": ctx.confidence_pct,
        "ci_low": stats["ci_low"],
        "ci_high": stats["ci_high"],
        "days": ctx.days,
    }


def _slices(ctx: RunContext, dimension: str, source: SliceSource | None = None) -> list[str]:
    source = source or SliceSource(dimension, {"sessions": "sessions"})
    query = source.query(ctx, ["sessions"], [dimension], _window_filter(ctx))
    values = ctx.semantic.run(ctx.con, query)[dimension].dropna().astype(str).tolist()
    return sorted(v for v in values if v != "unknown")


def _channels(ctx: RunContext, where: list[Filter], source: SliceSource | None = None) -> tuple[list[str], set[str]]:
    """Channels with activity in the slice, and those bought with ad spend (where budget is the lever)."""
    source = source or SliceSource("region", {m: m for m in ("sessions", "cost", "spend")})
    query = source.query(ctx, ["sessions", "cost", "spend"], ["channel"], where)
    frame = ctx.semantic.run(ctx.con, query)
    active = frame["sessions"].fillna(0) > 0
    if "cost" in frame:
        active |= frame["cost"].fillna(0) > 0
    frame = frame[active]
    frame = frame[~frame["channel"].isin(EXCLUDED_CHANNELS) & frame["channel"].notna()]
    paid = set(frame.loc[frame["spend"].fillna(0) > 0, "channel"].astype(str)) if "spend" in frame else set()
    return sorted(frame["channel"].astype(str)), paid
