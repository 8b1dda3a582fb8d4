"""Budget pacing: the spend of each budgeted campaign (semantic metric ``spend``) against its daily budget
(campaigns.csv ``budget``), over the last days of the window."""

from __future__ import annotations

import datetime

import pandas as pd

from mos_pipelines.insights.candidate import Candidate, RunContext, Skip, key_of, money, records
from mos_pipelines.insights.effect_statistics import mean_against
from mos_pipelines.insights.semantic import Filter
from mos_pipelines.warehouse import columns_of, table_exists

BUDGETS_SQL = """select campaign_id, max(campaign_name) as campaign_name, max(channel) as channel,
    max(objective) as objective, max(region) as region, max(budget) as daily_budget_usd,
    min(start_date) as start_date, max(end_date) as end_date
from staging.stg_marketing__campaign_variants
where budget > 0{campaign}
group by campaign_id
order by campaign_id"""


def budget_pacing(ctx: RunContext) -> tuple[list[Candidate], list[Skip]]:
    skips = []
    if table_exists(ctx.con, "experiments", "budget_allocations"):
        skips.append(
            Skip(
                "budget_pacing",
                "experiments.budget_allocations exists (columns: "
                f"{', '.join(columns_of(ctx.con, 'experiments', 'budget_allocations'))}); "
                "pacing still reads campaign budgets — allocations are not read yet",
            )
        )
    else:
        skips.append(
            Skip(
                "budget_pacing",
                "experiments.budget_allocations does not exist (experiments, issue 6): "
                "pacing is against campaign budgets from campaigns.csv only",
            )
        )
    if not table_exists(ctx.con, "staging", "stg_marketing__campaign_variants"):
        return [], [*skips, Skip("budget_pacing", "staging.stg_marketing__campaign_variants does not exist")]
    budgets = ctx.con.execute(BUDGETS_SQL.format(campaign="")).df()
    if budgets.empty:
        return [], [*skips, Skip("budget_pacing", "no campaign has a budget")]
    n_days = ctx.config.budget_pacing.days
    start = max(ctx.window_start, ctx.window_end - datetime.timedelta(days=n_days - 1))
    out = []
    for budget in budgets.itertuples(index=False):
        first = max(start, pd.Timestamp(budget.start_date).date()) if pd.notna(budget.start_date) else start
        if pd.notna(budget.end_date) and pd.Timestamp(budget.end_date).date() < first:
            continue
        last = ctx.window_end
        if pd.notna(budget.end_date):
            last = min(last, pd.Timestamp(budget.end_date).date())
        days = pd.date_range(first, last, freq="D").date
        if len(days) < 3:
            continue
        where = [
            Filter("metric_time__day", ">=", first),
            Filter("metric_time__day", "<=", last),
            Filter("campaign_id", "=", budget.campaign_id),
        ]
        query = ctx.semantic.query(["spend"], ["metric_time__day"], where)
        rows = ctx.semantic.run(ctx.con, query)
        daily = rows.set_index(pd.to_datetime(rows["metric_time__day"]).dt.date)["spend"].reindex(days).fillna(0)
        out.append(_candidate(ctx, budget, query, rows, daily.to_numpy(float), days))
    return out, skips


def _candidate(ctx: RunContext, budget, query, rows: pd.DataFrame, daily, days) -> Candidate:
    daily_budget = float(budget.daily_budget_usd)
    test = mean_against(daily, daily_budget, ctx.config.confidence_level)
    ci_low, ci_high = max(test.ci_low, 0.0) / daily_budget, test.ci_high / daily_budget  # spend is never negative
    spend, planned = float(daily.sum()), daily_budget * len(days)
    pace = spend / planned
    summary = {
        "campaign_id": budget.campaign_id,
        "channel": budget.channel,
        "objective": budget.objective,
        "daily_budget_usd": daily_budget,
        "days": len(days),
        "spend": spend,
        "budget": planned,
        "pace": pace,
        "first_day": days[0],
        "last_day": days[-1],
    }
    budget_sql = BUDGETS_SQL.format(campaign=f"\n  and campaign_id = '{budget.campaign_id}'")
    budget_rows = records(ctx.con.execute(budget_sql).df())
    candidate = Candidate(
        key=key_of("budget_pacing", budget.campaign_id),
        insight_type="budget_pacing",
        subject={"campaign_id": budget.campaign_id, "channel": budget.channel, "region": budget.region},
        objective=str(budget.objective or "acquisition"),
        hypothesis=(
            f"Campaign {budget.campaign_id} spends at a different rate than its daily budget "
            f"(H0: mean daily spend = budget; one-sample t-test over days)."
        ),
        prompt_id="insight.pacing",
        facts={},
        call_to_action="",
        evidence={
            "metric_query": query.as_evidence(),
            "rows": records(rows),
            "budget_query": {"sql": budget_sql, "rows": budget_rows},
            "window": {"start": days[0], "end": days[-1], "days": len(days)},
            "summary": [summary],
        },
    )
    candidate.evidence["statistics"] = {
        "method": "one-sample t-test of daily spend against the daily budget",
        "pace": pace,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "p_value": test.p_value,
        "confidence_level": ctx.confidence_pct,
    }
    gap = money(abs(spend - planned))
    candidate.evidence["impact"] = {"usd": gap, "formula": "|spend − daily budget × days|"}
    candidate.effect_size, candidate.ci_low, candidate.ci_high = pace, ci_low, ci_high
    candidate.p_value, candidate.impact_usd = test.p_value, gap
    candidate.relative_effect = abs(pace - 1)
    candidate.direction = "higher" if pace > 1 else "lower"
    candidate.facts = {
        "campaign_id": budget.campaign_id,
        "spend": spend,
        "budget": planned,
        "days": len(days),
        "pace_pct": pace * 100,
        "confidence_level": ctx.confidence_pct,
        "ci_low_pct": candidate.ci_low * 100,
        "ci_high_pct": candidate.ci_high * 100,
        "must_mention": [budget.campaign_id],
    }
    if pace < 1:
        candidate.call_to_action = (
            f"{budget.campaign_id} is under-delivering: raise bids or widen targeting if its "
            "return is good, otherwise move the unspent budget to the channel with the best "
            "return in the channel insights."
        )
    else:
        candidate.call_to_action = (
            f"{budget.campaign_id} spends above plan: cap its daily spend, or raise its budget "
            "on purpose if its return justifies it."
        )
    return candidate
