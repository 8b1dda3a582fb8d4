"""Experiments as assets (logic in ``mos_pipelines.experiments``): the variant bandit's allocation, the
assignments with their persistent holdout, and the channel budget allocation."""

import dagster as dg
import pandas as pd

from mos_pipelines.configuration import load_experiments as load_config
from mos_pipelines.defs._common import partial_result, warehouse_asset
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.experiments import allocation_tables, daily
from mos_pipelines.experiments.outcomes import WAREHOUSE, load_experiments
from mos_pipelines.skipped import SkippedPart

OWNER = "team:growth"
GROUP = "experiments"


def _markdown(frame: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """A small markdown table for asset metadata."""
    if frame.empty:
        return "none"

    def cell(value: object) -> str:
        return format(value, floatfmt) if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


@warehouse_asset(
    key=["experiments", "bandit_allocations"],
    group=GROUP,
    owner=OWNER,
    deps=[
        ["staging", "stg_marketing__campaign_variants"],
        ["staging", "stg_esp__email_events"],
        ["marts", "fct_conversions"],
        ["intermediate", "int_marketing__email_regions"],
    ],
    parts="experiments",
    description=(
        "Thompson-sampling allocation of every email experiment's traffic per segment (recipient region), for the "
        "day after the last email event: per arm the exposures and successes of its goal (click, conversion or "
        "revenue; `config/experiments.yaml`), posterior mean and 95 % interval, P(best), previous, target and new "
        "share, and the reason (thompson, floor, capped, rebalanced, min_exposures). Holdout units never count. "
        "History is kept per allocation_date; recomputing a date replaces it."
    ),
)
def bandit_allocations(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    config = load_config()
    with mos.connect() as con:
        update = daily.update_bandit(con, WAREHOUSE, config)
        rows = update.allocations
        if rows.empty:
            reason = (
                "no email campaign with variants in landing/campaigns/"
                if not update.experiments
                else "no email events yet (landing/email/): nothing to learn from"
            )
            skips = [SkippedPart("all experiments", reason)]
            return partial_result(context, con, {"dagster/row_count": 0, "experiments": len(update.experiments)}, skips)
        exposed = rows.groupby("experiment_id")["exposures"].sum()
        skips = [
            SkippedPart(e, "no exposures yet: its arms keep their configured shares until sends arrive")
            for e, n in exposed.items()
            if n == 0
        ]
        preview = rows[
            [
                "experiment_id",
                "segment",
                "variant_id",
                "exposures",
                "successes",
                "posterior_mean",
                "ci_lower",
                "ci_upper",
                "prob_best",
                "new_share",
                "reason",
            ]
        ]
        return partial_result(
            context,
            con,
            {
                "dagster/row_count": len(rows),
                "allocation_date": str(update.allocation_date),
                "experiments": len(update.experiments),
                "segments": int(rows[["experiment_id", "segment"]].drop_duplicates().shape[0]),
                "treated_units_learned_from": update.treated_units,
                "reasons": dg.MetadataValue.json(rows["reason"].value_counts().to_dict()),
                "allocation": dg.MetadataValue.md(_markdown(preview)),
                "config": str(config.source),
            },
            skips,
        )


@warehouse_asset(
    key=["experiments", "assignments"],
    group=GROUP,
    owner=OWNER,
    deps=[["experiments", "bandit_allocations"], ["marts", "dim_customers"], ["marts", "dim_customer_consents"]],
    parts="experiments",
    description=(
        "Current arm of every unit (recipient address) of every email experiment: everyone the campaign has "
        "emailed and every customer with an email address and email-marketing consent. A hash of the unit and the "
        "experiment puts a persistent share (`assignment.holdout_share`, default 10 %) in the holdout, which is "
        "never treated; another hash picks the arm from the segment's current shares. Stable across runs and "
        "when new units arrive; `first_assigned_date` keeps the first day a unit was assigned."
    ),
)
def assignments(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    config = load_config()
    with mos.connect() as con:
        allocation_tables.ensure_tables(con)
        experiments = load_experiments(con, WAREHOUSE, config)
        date = con.execute("select max(allocation_date) from experiments.bandit_allocations").fetchall()[0][0]
        if date is None or not experiments:
            reason = (
                "no email campaign with variants in landing/campaigns/"
                if not experiments
                else "no allocation yet (experiments.bandit_allocations is empty)"
            )
            return partial_result(context, con, {"dagster/row_count": 0}, [SkippedPart("all experiments", reason)])
        allocations = con.execute("select * from experiments.bandit_allocations where allocation_date = ?", [date]).df()
        audience = daily.warehouse_audience(con, experiments)
        assigned = daily.assign(con, WAREHOUSE, config, experiments, allocations, audience, date, replace=True)
        reached = set(assigned["experiment_id"])
        skips = [
            SkippedPart(e.experiment_id, "nobody to assign: no recipient and no consented customer with an email")
            for e in experiments
            if e.experiment_id not in reached
        ]
        summary = (
            assigned.groupby(["experiment_id", "variant_id"], as_index=False).size().rename(columns={"size": "units"})
        )
        holdout = assigned.groupby("experiment_id")["is_holdout"].mean().rename("holdout_share").reset_index()
        return partial_result(
            context,
            con,
            {
                "dagster/row_count": len(assigned),
                "allocation_date": str(date),
                "units_per_arm": dg.MetadataValue.md(_markdown(summary)),
                "holdout_share_realised": dg.MetadataValue.md(_markdown(holdout)),
            },
            skips,
        )


@warehouse_asset(
    key=["experiments", "budget_allocations"],
    group=GROUP,
    owner=OWNER,
    deps=[["marts", "fct_channel_performance"], ["ml", "mmm_fit"]],
    parts="channels",
    description=(
        "Split of the configured budget (`budget` in config/experiments.yaml) across paid channels for the next "
        "period. With a converged marketing mix model (`ml/mmm_fit`) covering and sizing every budget channel (90 % ROI "
        "interval within 20x): the split that "
        "maximises the expected return under its fitted response curves; otherwise (the reason is in the metadata) "
        "Thompson sampling over each channel's return per dollar in `fct_channel_performance` "
        "(lookback window), which assumes returns linear in spend. Either way: ROI with a 95 % interval, P(best), "
        "new share within the floor, min/max shares and the daily change cap, budget and expected return with its "
        "interval per channel."
    ),
)
def budget_allocations(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    config = load_config()
    with mos.connect() as con:
        rows, summary = daily.update_budget(con, config)
        if rows.empty:
            reason = str(summary.get("reason", "no channel performance yet (marts.fct_channel_performance is empty)"))
            return partial_result(context, con, {"dagster/row_count": 0}, [SkippedPart("all channels", reason)])
        skips = [
            SkippedPart(
                r.channel,
                "no spend in the lookback window: its return is the prior's, so it gets "
                "at most the exploration floor until it spends",
            )
            for r in rows.itertuples()
            if r.cost_usd <= 0
        ]
        preview = rows[
            [
                "channel",
                "cost_usd",
                "revenue_usd",
                "roi_mean",
                "roi_lower",
                "roi_upper",
                "prob_best",
                "previous_share",
                "new_share",
                "reason",
                "budget_usd",
                "expected_return_usd",
            ]
        ]
        return partial_result(
            context,
            con,
            {
                "dagster/row_count": len(rows),
                "allocation_date": str(rows["allocation_date"].iloc[0]),
                "method": str(summary.get("method", "")),
                "method_reason": str(summary.get("method_reason", "")),
                "budget_usd": summary["budget_usd"],
                "expected_return_usd": summary["expected_return_usd"],
                "expected_return_95_interval": f"{summary['expected_return_lower']:.0f} – {summary['expected_return_upper']:.0f}",
                "allocation": dg.MetadataValue.md(_markdown(preview, ".3f")),
            },
            skips,
        )


simulation_results = dg.AssetSpec(
    key=["experiments", "simulation_results"],
    group_name=GROUP,
    kinds={"python", "duckdb"},
    owners=[OWNER],
    description=(
        "Written by `mos simulate` (not by a Dagster run): per closed-loop run, day, experiment and true region, "
        "the treated sends and the expected reward of the bandit, of uniform allocation and of the oracle (the "
        "truth's best arm), their regrets, and the realised clicks."
    ),
)
