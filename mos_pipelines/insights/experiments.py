"""Experiment winners and lift over holdout, from ``marts.mart_variant_performance``.

Per campaign, in each region and across all regions: with two variants, the better against the other;
with more, each variant against the others pooled — on click rate (clicks per send) and conversion rate
(converted recipients per recipient). Lift over the holdout needs holdout recipients in the mart, which
appear once the experiments capability (issue 6) writes assignments; until then it is skipped with the
reason. The mart has no date column, so these metrics are read from its documented columns rather than
through a MetricFlow metric (MetricFlow needs a time dimension for measures).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mos_pipelines.insights.candidate import Candidate, RunContext, Skip, key_of, money, records
from mos_pipelines.insights.semantic import Filter
from mos_pipelines.insights.stats import compare_proportions
from mos_pipelines.insights.tables import columns_of, table_exists

ALL_REGIONS = "all"
VARIANTS_SQL = """select campaign_id, variant_id, region, is_holdout, recipients, sends, clicks, converted_recipients,
    click_rate, cvr
from marts.mart_variant_performance
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
    for table in ("assignments", "bandit_allocations"):
        if not table_exists(ctx.con, "experiments", table):
            skips.append(Skip("experiments", f"experiments.{table} does not exist yet (experiments, issue 6): "
                                             "winners come from mart_variant_performance alone"))
        else:
            skips.append(Skip("experiments", f"experiments.{table} exists (columns: "
                                             f"{', '.join(columns_of(ctx.con, 'experiments', table))}); "
                                             "its allocations are not read by the insights yet"))
    if not table_exists(ctx.con, "marts", "mart_variant_performance"):
        return [], [*skips, Skip("experiments", "marts.mart_variant_performance does not exist")]
    mart = ctx.con.execute("select * from marts.mart_variant_performance").df()
    if mart.empty:
        return [], [*skips, Skip("experiments", "marts.mart_variant_performance is empty")]
    objectives = _objectives(ctx)
    values = _values(ctx)
    metrics = [m for m in ctx.config.family("experiments").get("metrics", list(RATES)) if m in RATES]
    out: list[Candidate] = []
    holdout_rows = mart[mart["is_holdout"].fillna(False).astype(bool) & (mart["recipients"].fillna(0) > 0)]
    if holdout_rows.empty:
        skips.append(Skip("holdout_lift", "mart_variant_performance has no holdout recipients (holdout members get "
                                          "no email, so they appear only once experiments.assignments reports "
                                          "them): lift over holdout is not computed"))
    for campaign, rows in mart.groupby("campaign_id", sort=True):
        regions = [ALL_REGIONS] + sorted(r for r in rows["region"].dropna().unique() if r != "unknown")
        for region in regions:
            scoped = rows if region == ALL_REGIONS else rows[rows["region"] == region]
            sql = VARIANTS_SQL.format(campaign=campaign, region="" if region == ALL_REGIONS else f"\n  and region = '{region}'")
            evidence_rows = records(ctx.con.execute(sql).df())
            arms = scoped.groupby(["variant_id", "is_holdout"], dropna=False, as_index=False)[
                ["recipients", "sends", "clicks", "converted_recipients"]].sum()
            variants = arms[~arms["is_holdout"].fillna(False).astype(bool)].reset_index(drop=True)
            holdout = arms[arms["is_holdout"].fillna(False).astype(bool) & (arms["recipients"] > 0)]
            context = (ctx, campaign, region, sql, evidence_rows, objectives.get(campaign, "engagement"), values)
            if len(variants) >= 2:
                for metric in metrics:
                    out += _variant_candidates(context, RATES[metric], variants)
            if not holdout.empty:
                for _, variant in variants.iterrows():
                    out.append(_holdout_candidate(context, variant, holdout.iloc[0]))
    return out, skips


def _objectives(ctx: RunContext) -> dict[str, str]:
    if not table_exists(ctx.con, "intermediate", "int_marketing__campaigns"):
        return {}
    frame = ctx.con.execute("select campaign_id, objective from intermediate.int_marketing__campaigns").df()
    return {r.campaign_id: r.objective for r in frame.itertuples() if isinstance(r.objective, str)}


def _values(ctx: RunContext) -> dict[str, float]:
    """Revenue per email click and per conversion over the window (semantic metrics), for $ impact."""
    where = [Filter("metric_time__day", ">=", ctx.window_start), Filter("metric_time__day", "<=", ctx.window_end)]
    email = ctx.semantic.run(ctx.con, ctx.semantic.query(["revenue", "clicks"], [], [*where, Filter("channel", "=", "email")]))
    total = ctx.semantic.run(ctx.con, ctx.semantic.query(["revenue", "conversions"], [], where))
    clicks, conversions = float(email["clicks"].fillna(0).iloc[0]), float(total["conversions"].fillna(0).iloc[0])
    return {"click_rate": float(email["revenue"].fillna(0).iloc[0]) / clicks if clicks else 0.0,
            "cvr": float(total["revenue"].fillna(0).iloc[0]) / conversions if conversions else 0.0}


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
    return {"arm": name, "variant_id": str(row["variant_id"]), rate.events: events, rate.trials: trials,
            rate.name: events / trials if trials else None}


def _candidate(context, rate: Rate, a_row, b_row, b_label: str, pair: bool) -> Candidate:
    ctx, campaign, region, sql, evidence_rows, objective, values = context
    a = _arm(a_row, rate, str(a_row["variant_id"]))
    b = _arm(b_row, rate, b_label)
    scope = "Across all regions" if region == ALL_REGIONS else f"In {region}"
    comparison = "vs" if pair else "vs rest"
    key = key_of("experiment_winner", rate.name, campaign, region, a["variant_id"] if not pair else
                 "+".join(sorted([a["variant_id"], b["variant_id"]])))
    candidate = Candidate(
        key=key, insight_type="experiment_winner",
        subject={"metric": rate.name, "campaign_id": campaign, "region": region, "variant_id": a["variant_id"],
                 "compared_with": b["variant_id"], "comparison": comparison},
        objective=objective,
        hypothesis=(f"Variant {a['variant_id']} of {campaign} has a different {rate.label} than {b_label} "
                    f"({scope.lower()}; H0: equal; two-sided test on the log relative rate)."),
        prompt_id="insight.experiment_winner", facts={}, call_to_action="",
        evidence={"metric_query": {"sql": sql, "metrics": [rate.name], "source": "marts.mart_variant_performance",
                                   "definition": f"{rate.name} = sum({rate.events}) / sum({rate.trials})"},
                  "rows": evidence_rows, "summary": [a, b]},
    )
    if min(a[rate.events], b[rate.events]) < ctx.config.min_events:
        candidate.untestable = (f"too little data: {min(a[rate.events], b[rate.events]):g} {rate.events} in an arm "
                                f"(< {ctx.config.min_events})")
        candidate.statement = f"{scope}, {campaign} variant {a['variant_id']} {comparison} {b_label} on {rate.label}: not tested (too little data)."
        return candidate
    result = compare_proportions(a[rate.events], a[rate.trials], b[rate.events], b[rate.trials],
                                 ctx.config.confidence_level)
    impact = money(abs(a[rate.name] - b[rate.name]) * b[rate.trials] * values.get(rate.name, 0.0))
    candidate.evidence["statistics"] = {
        "method": "relative rate from totals; delta method on the log scale; normal reference",
        "ratio": result.ratio, "ci_low": result.ci_low, "ci_high": result.ci_high, "p_value": result.p_value,
        "confidence_level": ctx.confidence_pct}
    candidate.evidence["impact"] = {"usd": impact, "value_per_event": values.get(rate.name),
                                    "formula": f"|rate gap| × {rate.trials} of the other arm × revenue per "
                                               f"{'email click' if rate.name == 'click_rate' else 'conversion'}"}
    candidate.effect_size, candidate.ci_low, candidate.ci_high = result.ratio, result.ci_low, result.ci_high
    candidate.p_value, candidate.impact_usd = result.p_value, impact
    candidate.relative_effect = max(result.ratio, 1 / result.ratio) - 1
    candidate.direction = "higher" if result.ratio >= 1 else "lower"
    candidate.subject["better"] = a["variant_id"] if result.ratio >= 1 else b["variant_id"]
    candidate.facts = {"scope": scope, "variant_id": a["variant_id"], "campaign_id": campaign,
                       "metric_label": rate.label, "a_pct": a[rate.name] * 100, "b_pct": b[rate.name] * 100,
                       "b_label": b_label, "ratio": result.ratio, "confidence_level": ctx.confidence_pct,
                       "ci_low": result.ci_low, "ci_high": result.ci_high, "a_n": a[rate.trials],
                       "b_n": b[rate.trials], "unit": rate.unit, "must_mention": [campaign]}
    where = "" if region == ALL_REGIONS else f" in {region}"
    if result.ratio >= 1:
        candidate.call_to_action = (f"Send variant {a['variant_id']} of {campaign} to more of its audience{where} "
                                    "(keep the holdout), and reuse what it does differently in the next send.")
    else:
        candidate.call_to_action = (f"Retire variant {a['variant_id']} of {campaign}{where} or rework it; its "
                                    "audience share should go to the better variants.")
    return candidate


def _holdout_candidate(context, variant, holdout) -> Candidate:
    ctx, campaign, region, sql, evidence_rows, objective, values = context
    rate = RATES["cvr"]
    a = _arm(variant, rate, str(variant["variant_id"]))
    b = _arm(holdout, rate, "holdout")
    scope = "Across all regions" if region == ALL_REGIONS else f"In {region}"
    candidate = Candidate(
        key=key_of("holdout_lift", campaign, region, a["variant_id"]), insight_type="holdout_lift",
        subject={"metric": "cvr", "campaign_id": campaign, "region": region, "variant_id": a["variant_id"],
                 "compared_with": "holdout"},
        objective=objective,
        hypothesis=(f"Recipients of {campaign} variant {a['variant_id']} convert at a different rate than the "
                    f"holdout ({scope.lower()}; H0: no lift)."),
        prompt_id="insight.holdout_lift", facts={}, call_to_action="",
        evidence={"metric_query": {"sql": sql, "metrics": ["cvr"], "source": "marts.mart_variant_performance",
                                   "definition": "cvr = sum(converted_recipients) / sum(recipients)"},
                  "rows": evidence_rows, "summary": [a, b]},
    )
    if min(a[rate.events], b[rate.events]) < ctx.config.min_events:
        candidate.untestable = f"too little data: fewer than {ctx.config.min_events} converted recipients in an arm"
        candidate.statement = f"{scope}, {campaign} variant {a['variant_id']} vs holdout: not tested (too little data)."
        return candidate
    result = compare_proportions(a[rate.events], a[rate.trials], b[rate.events], b[rate.trials],
                                 ctx.config.confidence_level)
    impact = money(abs(a["cvr"] - b["cvr"]) * a["recipients"] * values.get("cvr", 0.0))
    candidate.evidence["statistics"] = {"method": "relative rate vs holdout; delta method on the log scale",
                                        "ratio": result.ratio, "ci_low": result.ci_low, "ci_high": result.ci_high,
                                        "p_value": result.p_value, "confidence_level": ctx.confidence_pct}
    candidate.evidence["impact"] = {"usd": impact, "formula": "|cvr − holdout cvr| × recipients × revenue per conversion"}
    candidate.effect_size, candidate.ci_low, candidate.ci_high = result.ratio, result.ci_low, result.ci_high
    candidate.p_value, candidate.impact_usd = result.p_value, impact
    candidate.relative_effect = max(result.ratio, 1 / result.ratio) - 1
    candidate.direction = "higher" if result.ratio >= 1 else "lower"
    candidate.facts = {"scope": scope, "campaign_id": campaign, "variant_id": a["variant_id"],
                       "a_pct": a["cvr"] * 100, "b_pct": b["cvr"] * 100, "ratio": result.ratio,
                       "confidence_level": ctx.confidence_pct, "ci_low": result.ci_low, "ci_high": result.ci_high,
                       "must_mention": [campaign]}
    candidate.call_to_action = (
        f"Keep sending {campaign} variant {a['variant_id']}: its lift over the holdout is real." if result.ratio >= 1
        else f"Pause {campaign} variant {a['variant_id']}: its recipients convert less than the holdout.")
    return candidate
