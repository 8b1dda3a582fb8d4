"""Lookalike audiences as an asset (logic in ``mos_pipelines.lookalike``)."""

import datetime

import dagster as dg

from mos_pipelines.configuration import load_lookalike as load_config
from mos_pipelines.defs._common import partial_result, warehouse_asset
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.lookalike import score_tables
from mos_pipelines.lookalike.truth import true_propensity_by_customer
from mos_pipelines.skipped import SkippedPart

OWNER = "team:data-science"


@warehouse_asset(
    key=["ml", "lookalike_scores"],
    group="ml",
    owner=OWNER,
    kinds=frozenset({"scikitlearn", "duckdb"}),
    deps=[["marts", "dim_customer_features"], ["marts", "dim_customer_identity_map"]],
    parts="audiences",
    description=(
        "Lookalike scores per audience of `config/lookalike.yaml`: `customer_id, audience, score, percentile, "
        "tier (1/2/3/5/10 %), model_version, scored_at`, seed members excluded. Every fit is evaluated on a "
        "held-out share of the seed and appended to `ml.model_runs`; a fit much worse than the last accepted "
        "one (by more than `degradation`'s amounts and beyond the noise of the two holdouts) is marked degraded, notified in `insights.notifications` and blocked by the check `not_degraded`. "
        "An audience that cannot be fitted (a seed below `min_seed_size`, an empty population) is skipped with the "
        "reason (a `skipped` model run, no scores) and the others are fitted."
    ),
)
def lookalike_scores(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    # scikit-learn is imported here, when a fit runs, not when the definitions load (3 s of every load).
    from mos_pipelines.lookalike.audiences import fit_audience, judge, model_card, model_run_row, skipped_run_row
    from mos_pipelines.lookalike.model import LookalikeError

    config = load_config()
    now = datetime.datetime.now(datetime.UTC)
    metadata: dict[str, object] = {"config": str(config.source)}
    with mos.connect() as con:
        score_tables.ensure_tables(con)
        truth = true_propensity_by_customer(con, mos.paths.truth_dir)
        total = 0
        skips: list[SkippedPart] = []
        for audience in config.audiences:
            context.log.info(f"fitting audience {audience.name}")
            try:
                result = fit_audience(con, audience, config.model, now, true_propensity=truth)
            except LookalikeError as exc:
                skips.append(SkippedPart(audience.name, str(exc)))
                score_tables.write_skipped(
                    con, audience.name, skipped_run_row(audience, config.model, str(exc), context.run_id, now)
                )
                metadata[f"{audience.name}/status"] = "skipped"
                continue
            baseline = score_tables.last_accepted_run(con, audience.name, audience.definition_hash(config.model))
            judge(result, baseline, config.degradation)
            row = model_run_row(result, context.run_id, now)
            score_tables.write_result(con, result, row)
            if result.status == "degraded":
                score_tables.notify_degradation(con, result, row["model_run_id"], now)
                context.log.warning(f"audience {audience.name} degraded: {'; '.join(result.reasons)}")
            elif result.within_noise:  # a drop within the noise of the holdouts: said, not blocked
                context.log.info(f"audience {audience.name}: {'; '.join(result.within_noise)}")
                metadata[f"{audience.name}/status_reason"] = "; ".join(result.within_noise)
            ev = result.fit.evaluation
            total += len(result.scores)
            prefix = audience.name
            metadata[f"{prefix}/model_card"] = dg.MetadataValue.md(model_card(result))
            metadata[f"{prefix}/status"] = result.status
            metadata[f"{prefix}/auc"] = ev.auc
            metadata[f"{prefix}/recall_at_10"] = ev.recall_at[10]
            metadata[f"{prefix}/lift_at_10"] = ev.lift_at[10]
            metadata[f"{prefix}/seed_size"] = result.fit.sizes["seed"]
            metadata[f"{prefix}/scored_rows"] = len(result.scores)
            if ev.true_propensity_auc is not None:
                metadata[f"{prefix}/true_propensity_auc"] = ev.true_propensity_auc
        metadata["dagster/row_count"] = total
        return partial_result(context, con, metadata, skips)
