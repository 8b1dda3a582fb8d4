"""Experiment winners from ``marts.fct_variant_performance``, lift over the holdout from
``marts.fct_experiment_holdout``.

Winners, per campaign, in each region and across all regions: with two variants, the better against the
other; with more, each variant against the others pooled — on click rate (clicks per send) and conversion
rate (converted recipients per recipient). Lift over the holdout, per experiment in each region and across
all regions: the conversion rate of the units assigned to any variant against the units of the persistent
holdout, each followed from its first assignment (intention to treat; ``experiments.assignments`` read by the
mart). Neither mart has a date column, so these metrics are read from their documented columns rather than
through a MetricFlow metric (MetricFlow needs a time dimension for measures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from mos_pipelines.insights.candidate import Candidate, RunContext, Skip, key_of, money, records
from mos_pipelines.insights.effect_statistics import compare_proportions
from mos_pipelines.insights.semantic import Filter
from mos_pipelines.warehouse import table_exists

ALL_REGIONS = "all"
VARIANTS_SQL = """select campaign_id, variant_id, region, is_holdout, recipients, sends, clicks, converted_recipients,
    click_rate, cvr
from marts.fct_variant_performance
where campaign_id = '{campaign}'{region}
order by variant_id, region"""


@dataclass(frozen=True)
class Rate:
    name: str
    events: str
    trials: str
    label: str
    unit: str


RATES = {
    "click_rate": Rate("click_rate", "clicks", "sends", "click rate", "sends"),
    "cvr": Rate("cvr", "converted_recipients", "recipients", "conversion rate", "recipients"),
}


def experiment_candidates(ctx: RunContext) -> tuple[list[Candidate], list[Skip]]:
    skips = []
    if table_exists(ctx.con, "experiments", "bandit_allocations"):
        skips.append(
            Skip(
                "experiments",
                "experiments.bandit_allocations is not read: where the bandit moved "
                "traffic is a decision, not a tested finding; the winners it acts on "
                "are tested here from the variant results",
            )
        )
    objectives = _objectives(ctx)
    values = _values(ctx)
    out, holdout_skips = holdout_candidates(ctx, objectives, values)
    skips += holdout_skips
    if not table_exists(ctx.con, "marts", "fct_variant_performance"):
        return out, [*skips, Skip("experiments", "marts.fct_variant_performance does not exist")]
    mart = ctx.con.execute("select * from marts.fct_variant_performance").df()
    if mart.empty:
        return out, [*skips, Skip("experiments", "marts.fct_variant_performance is empty")]
    metrics = [m for m in ctx.config.experiments.metrics if m in RATES]
    for campaign, rows in mart.groupby("campaign_id", sort=True):
        regions = [ALL_REGIONS] + sorted(r for r in rows["region"].dropna().unique() if r != "unknown")
        for region in regions:
            scoped = rows if region == ALL_REGIONS else rows[rows["region"] == region]
            sql = VARIANTS_SQL.format(
                campaign=campaign, region="" if region == ALL_REGIONS else f"\n  and region = '{region}'"
            )
            evidence_rows = records(ctx.con.execute(sql).df())
            arms = scoped.groupby(["variant_id", "is_holdout"], dropna=False, as_index=False)[
                ["recipients", "sends", "clicks", "converted_recipients"]
            ].sum()
            variants = arms[~arms["is_holdout"].fillna(False).astype(bool)].reset_index(drop=True)
            context = (ctx, campaign, region, sql, evidence_rows, objectives.get(campaign, "engagement"), values)
            if len(variants) >= 2:
                for metric in metrics:
                    out += _variant_candidates(context, RATES[metric], variants)
    return out, skips


def _objectives(ctx: RunContext) -> dict[str, str]:
    if not table_exists(ctx.con, "intermediate", "int_marketing__campaigns"):
        return {}
    frame = ctx.con.execute("select campaign_id, objective from intermediate.int_marketing__campaigns").df()
    return {r.campaign_id: r.objective for r in frame.itertuples() if isinstance(r.objective, str)}


def _values(ctx: RunContext) -> dict[str, float]:
    """Revenue per email click and per conversion over the window (semantic metrics), for $ impact."""
    where = [Filter("metric_time__day", ">=", ctx.window_start), Filter("metric_time__day", "<=", ctx.window_end)]
    email = ctx.semantic.run(
        ctx.con, ctx.semantic.query(["revenue", "clicks"], [], [*where, Filter("channel", "=", "email")])
    )
    total = ctx.semantic.run(ctx.con, ctx.semantic.query(["revenue", "conversions"], [], where))
    clicks, conversions = float(email["clicks"].fillna(0).iloc[0]), float(total["conversions"].fillna(0).iloc[0])
    return {
        "click_rate": float(email["revenue"].fillna(0).iloc[0]) / clicks if clicks else 0.0,
        "cvr": float(total["revenue"].fillna(0).iloc[0]) / conversions if conversions else 0.0,
    }


def _variant_candidates(context, rate: Rate, variants: pd.DataFrame) -> list[Candidate]:
    if len(variants) == 2:
        a, b = variants.iloc[0], variants.iloc[1]
        a_rate = a[rate.events] / a[rate.trials] if a[rate.trials] else 0.0
        b_rate = b[rate.events] / b[rate.trials] if b[rate.trials] else 0.0
        first, second = (a, b) if a_rate >= b_rate else (b, a)
        return [_candidate(context, rate, first, second, f"variant {second['variant_id']}", pair=True)]
    out = []
    for i, variant in variants.iterrows():
        rest = variants.drop(index=i)
        pooled = rest[["recipients", "sends", "clicks", "converted_recipients"]].sum()
        pooled["variant_id"] = "+".join(str(v) for v in rest["variant_id"])
        out.append(_candidate(context, rate, variant, pooled, "the other variants", pair=False))
    return out


def _arm(row, rate: Rate, name: str) -> dict:
    trials, events = float(row[rate.trials]), float(row[rate.events])
    return {
        "arm": name,
        "variant_id": str(row["variant_id"]),
        rate.events: events,
        rate.trials: trials,
        rate.name: events / trials if trials else None,
    }


def _candidate(context, rate: Rate, a_row, b_row, b_label: str, pair: bool) -> Candidate:
    ctx, campaign, region, sql, evidence_rows, objective, values = context
    a = _arm(a_row, rate, str(a_row["variant_id"]))
    b = _arm(b_row, rate, b_label)
    scope = "Across all regions" if region == ALL_REGIONS else f"In {region}"
    comparison = "vs" if pair else "vs rest"
    key = key_of(
        "experiment_winner",
        rate.name,
        campaign,
        region,
        a["variant_id"] if not pair else "+".join(sorted([a["variant_id"], b["variant_id"]])),
    )
    candidate = Candidate(
        key=key,
        insight_type="experiment_winner",
        subject={
            "metric": rate.name,
            "campaign_id": campaign,
            "region": region,
            "variant_id": a["variant_id"],
            "compared_with": b["variant_id"],
            "comparison": comparison,
        },
        objective=objective,
        hypothesis=(
            f"Variant {a['variant_id']} of {campaign} has a different {rate.label} than {b_label} "
            f"({scope.lower()}; H0: equal; two-sided test on the log relative rate)."
        ),
        prompt_id="insight.experiment_winner",
        facts={},
        call_to_action="",
        evidence={
            "metric_query": {
                "sql": sql,
                "metrics": [rate.name],
                "source": "marts.fct_variant_performance",
                "definition": f"{rate.name} = sum({rate.events}) / sum({rate.trials})",
            },
            "rows": evidence_rows,
            "summary": [a, b],
        },
    )
    if min(a[rate.events], b[rate.events]) < ctx.config.min_events:
        candidate.untestable = (
            f"too little data: {min(a[rate.events], b[rate.events]):g} {rate.events} in an arm "
            f"(< {ctx.config.min_events})"
        )
        candidate.statement = f"{scope}, {campaign} variant {a['variant_id']} {comparison} {b_label} on {rate.label}: not tested (too little data)."
        return candidate
    result = compare_proportions(
        a[rate.events], a[rate.trials], b[rate.events], b[rate.trials], ctx.config.confidence_level
    )
    impact = money(abs(a[rate.name] - b[rate.name]) * b[rate.trials] * values.get(rate.name, 0.0))
    candidate.evidence["statistics"] = _ratio_statistics(
        "relative rate from totals; delta method on the log scale; normal reference", result, ctx
    )
    candidate.evidence["impact"] = {
        "usd": impact,
        "value_per_event": values.get(rate.name),
        "formula": f"|rate gap| × {rate.trials} of the other arm × revenue per "
        f"{'email click' if rate.name == 'click_rate' else 'conversion'}",
    }
    candidate.effect_size, candidate.ci_low, candidate.ci_high = result.ratio, result.ci_low, result.ci_high
    candidate.p_value, candidate.impact_usd = result.p_value, impact
    candidate.relative_effect = max(result.ratio, 1 / result.ratio) - 1
    candidate.direction = "higher" if result.ratio >= 1 else "lower"
    candidate.subject["better"] = a["variant_id"] if result.ratio >= 1 else b["variant_id"]
    candidate.facts = {
        "scope": scope,
        "variant_id": a["variant_id"],
        "campaign_id": campaign,
        "metric_label": rate.label,
        "a_pct": a[rate.name] * 100,
        "b_pct": b[rate.name] * 100,
        "b_label": b_label,
        "ratio": result.ratio,
        "confidence_level": ctx.confidence_pct,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "a_n": a[rate.trials],
        "b_n": b[rate.trials],
        "unit": rate.unit,
        "must_mention": [campaign],
    }
    where = "" if region == ALL_REGIONS else f" in {region}"
    if result.ratio >= 1:
        candidate.call_to_action = (
            f"Send variant {a['variant_id']} of {campaign} to more of its audience{where} "
            "(keep the holdout), and reuse what it does differently in the next send."
        )
    else:
        candidate.call_to_action = (
            f"Retire variant {a['variant_id']} of {campaign}{where} or rework it; its "
            "audience share should go to the better variants."
        )
    return candidate


HOLDOUT_SQL = """select experiment_id, variant_id, region, is_holdout, assigned_units, observed_units, sent_units,
    converted_units, cvr, window_days, first_assigned_date, last_assigned_date, data_through_date
from marts.fct_experiment_holdout
where experiment_id = '{experiment}'{region}
order by is_holdout, variant_id, region"""
UNIT_COLUMNS = ["assigned_units", "observed_units", "sent_units", "converted_units"]


def holdout_candidates(
    ctx: RunContext, objectives: dict[str, str], values: dict[str, float]
) -> tuple[list[Candidate], list[Skip]]:
    """Treated units (every variant) against the persistent holdout, per experiment and region."""
    if not table_exists(ctx.con, "marts", "fct_experiment_holdout"):
        return [], [Skip("holdout_lift", "marts.fct_experiment_holdout does not exist (build the marts)")]
    mart = ctx.con.execute("select * from marts.fct_experiment_holdout").df()
    if mart.empty:
        return [], [
            Skip(
                "holdout_lift",
                "marts.fct_experiment_holdout is empty: experiments.assignments does not exist or holds no units yet",
            )
        ]
    skips, out = [], []
    max_sent = ctx.config.experiments.holdout_max_sent_share
    for experiment, rows in mart.groupby("experiment_id", sort=True):
        holdout_all = rows[rows["is_holdout"].astype(bool)]
        if int(rows["observed_units"].sum()) == 0:
            skips.append(
                Skip(
                    "holdout_lift",
                    f"{experiment}: its {int(rows['assigned_units'].sum()):,} units were "
                    f"first assigned after the last day with data "
                    f"({rows['data_through_date'].iloc[0]}): nothing to measure yet",
                )
            )
            continue
        if holdout_all.empty:
            skips.append(Skip("holdout_lift", f"{experiment}: no holdout units"))
            continue
        window = int(rows["window_days"].iloc[0])
        regions = [ALL_REGIONS] + sorted(r for r in rows["region"].dropna().unique() if r != "unknown")
        for region in regions:
            scoped = rows if region == ALL_REGIONS else rows[rows["region"] == region]
            sql = HOLDOUT_SQL.format(
                experiment=experiment, region="" if region == ALL_REGIONS else f"\n  and region = '{region}'"
            )
            evidence_rows = records(ctx.con.execute(sql).df())
            treated = scoped[~scoped["is_holdout"].astype(bool)]
            holdout = scoped[scoped["is_holdout"].astype(bool)]
            variant_ids = "+".join(sorted(str(v) for v in treated["variant_id"].dropna().unique()))
            a = {"arm": "treated", "variant_id": variant_ids, **_unit_sums(treated)}
            holdout_ids = "+".join(sorted(str(v) for v in holdout["variant_id"].dropna().unique()))
            b = {"arm": "holdout", "variant_id": holdout_ids, **_unit_sums(holdout)}
            out.append(
                _holdout_candidate(
                    ctx,
                    experiment,
                    region,
                    sql,
                    evidence_rows,
                    a,
                    b,
                    objectives.get(experiment, "conversion"),
                    values,
                    window,
                    max_sent,
                )
            )
    return out, skips


def _unit_sums(frame: pd.DataFrame) -> dict:
    sums = {c: float(frame[c].fillna(0).sum()) for c in UNIT_COLUMNS}
    cvr = sums["converted_units"] / sums["observed_units"] if sums["observed_units"] else None
    return {**sums, "cvr": cvr}


def _holdout_candidate(
    ctx: RunContext,
    experiment: str,
    region: str,
    sql: str,
    evidence_rows: list[dict],
    a: dict,
    b: dict,
    objective: str,
    values: dict[str, float],
    window: int,
    max_sent: float,
) -> Candidate:
    scope = "Across all regions" if region == ALL_REGIONS else f"In {region}"
    candidate = Candidate(
        key=key_of("holdout_lift", experiment, region),
        insight_type="holdout_lift",
        subject={
            "metric": "cvr",
            "campaign_id": experiment,
            "region": region,
            "variant_id": a["variant_id"],
            "compared_with": "holdout",
        },
        objective=objective,
        hypothesis=(
            f"Units assigned to a variant of {experiment} convert at a different rate than its holdout "
            f"within {window} days of their first assignment ({scope.lower()}; H0: no lift)."
        ),
        prompt_id="insight.holdout_lift",
        facts={},
        call_to_action="",
        evidence={
            "metric_query": {
                "sql": sql,
                "metrics": ["cvr"],
                "source": "marts.fct_experiment_holdout",
                "definition": "cvr = sum(converted_units) / sum(observed_units)",
            },
            "rows": evidence_rows,
            "summary": [a, b],
            "window": {"days": window},
        },
    )
    if b["observed_units"] and b["sent_units"] / b["observed_units"] > max_sent:
        candidate.untestable = (
            f"the holdout is contaminated: {b['sent_units']:g} of its {b['observed_units']:g} "
            f"units were sent {experiment} after their assignment (> {max_sent:.0%})"
        )
    elif not a["observed_units"] or not b["observed_units"]:
        candidate.untestable = "no observed units in an arm"
    elif min(a["converted_units"], b["converted_units"]) < ctx.config.min_events:
        candidate.untestable = (
            f"too little data: {min(a['converted_units'], b['converted_units']):g} converted "
            f"units in an arm (< {ctx.config.min_events})"
        )
    if candidate.untestable:
        candidate.statement = f"{scope}, {experiment} vs its holdout: not tested ({candidate.untestable})."
        return candidate
    result = compare_proportions(
        a["converted_units"],
        a["observed_units"],
        b["converted_units"],
        b["observed_units"],
        ctx.config.confidence_level,
    )
    impact = money(abs(a["cvr"] - b["cvr"]) * a["observed_units"] * values.get("cvr", 0.0))
    candidate.evidence["statistics"] = _ratio_statistics(
        "relative rate vs holdout; delta method on the log scale", result, ctx
    )
    candidate.evidence["impact"] = {
        "usd": impact,
        "value_per_event": values.get("cvr"),
        "formula": "|cvr − holdout cvr| × observed treated units × revenue per conversion",
    }
    candidate.effect_size, candidate.ci_low, candidate.ci_high = result.ratio, result.ci_low, result.ci_high
    candidate.p_value, candidate.impact_usd = result.p_value, impact
    candidate.relative_effect = max(result.ratio, 1 / result.ratio) - 1
    candidate.direction = "higher" if result.ratio >= 1 else "lower"
    candidate.subject["better"] = "treated" if result.ratio >= 1 else "holdout"
    candidate.facts = {
        "scope": scope,
        "campaign_id": experiment,
        "variant_id": a["variant_id"],
        "a_pct": a["cvr"] * 100,
        "b_pct": b["cvr"] * 100,
        "ratio": result.ratio,
        "window_days": window,
        "a_n": a["observed_units"],
        "b_n": b["observed_units"],
        "confidence_level": ctx.confidence_pct,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "must_mention": [experiment],
    }
    where = "" if region == ALL_REGIONS else f" in {region}"
    candidate.call_to_action = (
        f"Keep sending {experiment}{where}: its recipients convert more than the holdout; keep the holdout to "
        "keep measuring it."
        if result.ratio >= 1
        else f"Pause or rework {experiment}{where}: units that get it convert less than the holdout."
    )
    return candidate


def _ratio_statistics(method: str, result: Any, ctx: RunContext) -> dict[str, Any]:
    """The statistics evidence of a relative-rate finding: the method, ratio, interval, p-value and level."""
    return {
        "method": method,
        "ratio": result.ratio,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value,
        "confidence_level": ctx.confidence_pct,
    }
