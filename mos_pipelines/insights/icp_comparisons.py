"""ICP tier × channel: how a channel converts the sessions of one ICP tier's customers against the other tiers'
("tier-A customers convert from paid social twice as often as the other tiers"), so what is learned about fit
reaches the channel plans.

Sessions and conversion credits are fct_channel_segment_performance's (marts.fct_touchpoints sessions, the KPI
attribution model's credits on the KPI conversion types of marts.fct_attributed_conversions) split by the tier of
the customer behind them in ``policy.icp_scores``; sessions and credits without a scored customer are left out.
The test is the channel comparisons' (ratio of sums with the delta-method variance over days, at least the binomial
variance of the arm's conversions; Welch t on the log ratio), on conversion rate only: spend is not split by tier.
"""

from __future__ import annotations

from mos_pipelines.configuration import load_transform
from mos_pipelines.insights.candidate import Candidate, RunContext, Skip, key_of, money, records
from mos_pipelines.insights.channel_comparisons import (
    EXCLUDED_CHANNELS,
    METRICS,
    _comparison,
    _comparison_facts,
    _label,
    _summary,
    _untestable,
)
from mos_pipelines.warehouse import table_exists

FAMILY = "icp_comparison"
OTHERS = "other tiers"

SQL = """
with tiers as (
    select cast(customer_id as varchar) as customer_id, tier from policy.icp_scores
),
facts as (
    select t.touch_date as metric_time__day, t.channel, s.tier, 1 as sessions, cast(0 as double) as conversions
    from marts.fct_touchpoints t inner join tiers s on s.customer_id = t.customer_id
    where t.session_id is not null and t.touch_date between {start} and {end}
    union all
    select a.conversion_date, a.channel, s.tier, 0, a.credit
    from marts.fct_attributed_conversions a inner join tiers s on s.customer_id = a.customer_id
    where a.attribution_model = {model} and a.conversion_type in ({types})
        and a.conversion_date between {start} and {end}
)
select metric_time__day, channel, tier, sum(sessions) as sessions, sum(conversions) as conversions,
       sum(conversions) / nullif(sum(sessions), 0) as conversion_rate
from facts
where {channel}
group by all
order by metric_time__day, channel, tier
"""


def _text(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def query_sql(ctx: RunContext, channel: str | None) -> str:
    """The SQL of the family's rows, every value written in (an insight's evidence re-runs as it stands)."""
    transform = load_transform()
    return SQL.format(
        start=f"date {_text(ctx.window_start)}",
        end=f"date {_text(ctx.window_end)}",
        model=_text(transform.mos__marketing_kpi_attribution_model),
        types=", ".join(_text(t) for t in transform.mos__marketing_kpi_conversion_types),
        channel="channel is not null" if channel is None else f"channel = {_text(channel)}",
    ).strip()


def icp_comparisons(ctx: RunContext) -> tuple[list[Candidate], list[Skip]]:
    """For every channel and ICP tier: the tier's customers vs the other tiers' on conversion rate."""
    needed = [("policy", "icp_scores"), ("marts", "fct_touchpoints"), ("marts", "fct_attributed_conversions")]
    missing = [".".join(t) for t in needed if not table_exists(ctx.con, *t)]
    if missing:
        return [], [Skip(FAMILY, f"{', '.join(missing)} does not exist (the policy assets or the marts have not run)")]
    rows = ctx.con.execute(query_sql(ctx, None)).df()
    tiers = sorted(rows["tier"].dropna().unique())
    if len(tiers) < 2:
        return [], [Skip(FAMILY, f"fewer than two ICP tiers with sessions in the window ({tiers})")]
    spec = METRICS["conversion_rate"]
    out = []
    for channel in sorted(set(rows["channel"]) - set(EXCLUDED_CHANNELS)):
        mine = rows[rows["channel"] == channel].reset_index(drop=True)
        evidence_query = {"sql": query_sql(ctx, channel), "relation": "policy.icp_scores × marts"}
        for tier in tiers:
            a_rows = mine[mine["tier"] == tier]
            b_rows = (
                mine[mine["tier"] != tier]
                .drop(columns=["tier", "channel"])
                .groupby("metric_time__day", as_index=False)
                .sum(numeric_only=True)
            )
            out.append(_candidate(ctx, spec, channel, str(tier), a_rows, b_rows, mine, evidence_query))
    return out, []


def _candidate(ctx, spec, channel, tier, a_rows, b_rows, rows, query) -> Candidate:  # noqa: ANN001
    a = _summary(f"tier {tier}", a_rows, spec, channel=channel, tier=tier)
    b = _summary(OTHERS, b_rows, spec, channel=channel, tier=OTHERS)
    for arm, frame in ((a, a_rows), (b, b_rows)):
        arm["conversions"] = float(frame["conversions"].fillna(0).sum())
        arm["sessions"] = float(frame["sessions"].fillna(0).sum())
    candidate = Candidate(
        key=key_of(FAMILY, spec.name, channel, tier),
        insight_type=FAMILY,
        subject={"metric": spec.name, "channel": channel, "tier": tier},
        objective=spec.objective,
        hypothesis=(
            f"The {spec.label} of {_label(channel)} among ICP tier {tier} customers differs from the other tiers' "
            "(H0: equal; two-sided test on the log ratio)."
        ),
        prompt_id="insight.icp_comparison",
        facts={},
        call_to_action="",
        evidence={
            "metric_query": query,
            "rows": records(
                rows[["metric_time__day", "channel", "tier", "sessions", "conversions", "conversion_rate"]]
            ),
            "window": {"start": ctx.window_start, "end": ctx.window_end, "days": ctx.days},
            "summary": [a, b],
        },
    )
    reason = _untestable(spec, a, b, ctx.config.min_events, ctx.config.min_orders)
    if reason:
        candidate.untestable = reason
        candidate.statement = (
            f"{_label(channel)} for ICP tier {tier} vs other tiers on {spec.label} — not tested ({reason})."
        )
        return candidate
    stats = _comparison(ctx, spec, a_rows, b_rows, a, b)
    share = ctx.config.shift_share
    gap = abs(a[spec.name] - b[spec.name])
    impact = money(share * gap * b["sessions"] * _revenue_per_conversion(ctx))
    candidate.evidence.update(
        {
            "statistics": stats,
            "impact": {
                "usd": impact,
                "formula": f"{share:g} × sessions of the other tiers × |conversion-rate gap| × revenue per conversion "
                "(the window's, all channels)",
            },
        }
    )
    better = stats["ratio"] >= 1
    candidate.effect_size, candidate.ci_low, candidate.ci_high = stats["ratio"], stats["ci_low"], stats["ci_high"]
    candidate.p_value, candidate.impact_usd = stats["p_value"], impact
    candidate.relative_effect = max(stats["ratio"], 1 / stats["ratio"]) - 1 if stats["ratio"] > 0 else None
    candidate.direction = "higher" if better else "lower"
    candidate.subject["better"] = f"tier {tier}" if better else OTHERS
    candidate.facts = {
        "a_label": _label(channel).capitalize(),
        "tier": tier,
        **_comparison_facts(ctx, spec, a, b, stats),
        "must_mention": [_label(channel), f"tier {tier}"],
    }
    if better:
        candidate.call_to_action = (
            f"Use {_label(channel)} for tier-{tier} accounts first (audiences, retargeting, sequences), and weigh "
            f"it in the next best action's context weights for tier {tier}."
        )
    else:
        candidate.call_to_action = (
            f"Reach tier-{tier} accounts through other channels than {_label(channel)}, or find out why its "
            f"tier-{tier} visits convert less (offer, landing page, audience)."
        )
    return candidate


def _revenue_per_conversion(ctx: RunContext) -> float:
    """Revenue per attributed conversion over the window (all channels), from the KPI model."""
    transform = load_transform()
    row = ctx.con.execute(
        "select sum(revenue_usd_credited), sum(credit) from marts.fct_attributed_conversions "
        "where attribution_model = ? and conversion_date between ? and ?",
        [transform.mos__marketing_kpi_attribution_model, ctx.window_start, ctx.window_end],
    ).fetchone()
    revenue, credits = row or (None, None)
    return float(revenue) / float(credits) if revenue and credits else 0.0
