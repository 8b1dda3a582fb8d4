"""The marketing mix model as an asset (logic in ``mos_pipelines.mmm``) and its blocking convergence check."""

import datetime

import dagster as dg

from mos_pipelines.defs._common import partial_result, warehouse_asset, warehouse_check
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.skipped import SkippedPart

OWNER = "team:data-science"


@warehouse_asset(
    key=["ml", "mmm_fit"],
    group="ml",
    owner=OWNER,
    # no "duckdb" kind: the build plan reads that kind as "writes the table its key names" (ml.mmm_fit), and this
    # asset writes ml.mmm_fits and the ml.mmm_* details, so the plan would run it on every tick
    kinds=frozenset({"pymc", "python"}),
    deps=[["marts", "fct_channel_performance"], ["marts", "fct_conversions"], ["marts", "fct_experiment_holdout"]],
    parts="model parts",
    description=(
        "Bayesian marketing mix model (PyMC, sampled by nutpie's NUTS) of weekly revenue by region on weekly cost by channel and region "
        "(geometric adstock + logistic saturation per channel, baseline, trend and seasonality per region; lift "
        "from the holdouts as calibration). Writes `ml.mmm_fits` (every attempt, diagnostics, model card) and, for a "
        "converged fit, `ml.mmm_channel_roi` (contribution, ROI, marginal ROI, 90 % intervals), "
        "`ml.mmm_response_curves`, `ml.mmm_parameters`, `ml.mmm_region_contributions`, `ml.mmm_fitted`, "
        "`ml.mmm_posterior` and `ml.mmm_region_mix` (read by `experiments/budget_allocations`). Too little data "
        "(fewer than 26 complete weeks, fewer than 2 channels with spend) skips the fit with the reason. Sampler size: "
        "`MOS_MMM_DRAWS`, `MOS_MMM_TUNE`, `MOS_MMM_CHAINS`, `MOS_MMM_CORES` (defaults 1000, 500, 2, 2), `MOS_MMM_SAMPLER` "
        "(nutpie; pymc for PyMC's own); the check's ESS gate `MOS_MMM_MIN_ESS` (100)."
    ),
)
def mmm_fit(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    from mos_pipelines.mmm import data as mmm_data
    from mos_pipelines.mmm import model, report, tables

    now = datetime.datetime.now(datetime.UTC)
    with mos.connect() as con:
        try:
            weekly = mmm_data.from_marts(con)
        except mmm_data.NotEnoughData as exc:
            tables.write_skipped(con, str(exc), context.run_id, now)
            return partial_result(
                context, con, {"status": "skipped", "reason": str(exc)}, [SkippedPart("fit", str(exc))]
            )
        skips = [SkippedPart(part, reason) for part, reason in weekly.left_out]
        lift, note = report.holdout_lift_tests(con, weekly)
        if note:
            context.log.info(f"lift tests: {note}")
        settings = model.settings_from_env()
        latest = tables.latest_fit(con)
        key = tables.data_key(weekly, settings, len(lift))
        if latest is not None and latest["fit_id"] == key and latest["status"] in ("fitted", "not_converged"):
            # same complete weeks, lift tests and sampler: the same seeded posterior; keep it (a refit costs minutes)
            context.log.info(f"MMM data unchanged since fit {key}: kept")
            meta = {"fit_id": key, "status": str(latest["status"]), "kept": "data unchanged since the last fit"}
            return partial_result(context, con, meta, skips)
        context.log.info(f"fitting the MMM on {weekly.shape} with {len(lift)} lift test(s)")
        try:
            result = model.fit(weekly, settings, lift)
        except model.FitError as exc:
            tables.write_skipped(con, str(exc), context.run_id, now, weekly.outcome_name)
            return partial_result(
                context, con, {"status": "skipped", "reason": str(exc)}, [*skips, SkippedPart("fit", str(exc))]
            )
        card = report.model_card(result)
        fid = tables.write_fit(con, result, card, context.run_id, now)
        g = result.diagnostics
        return partial_result(
            context,
            con,
            {
                "fit_id": fid,
                "status": "fitted" if result.converged else "not_converged",
                "model_card": dg.MetadataValue.md(card),
                "fit_seconds": round(result.fit_seconds, 1),
                "max_rhat": g["max_rhat"],
                "min_ess_bulk": g["min_ess_bulk"],
                "divergences": int(g["divergences"]),
                "dagster/row_count": len(result.channel_roi),
            },
            skips,
        )


@warehouse_check(
    asset=["ml", "mmm_fit"],
    name="mmm_converged",
    blocking=True,
    description=(
        "Fails when the latest MMM fit did not converge (max r-hat above 1.05, bulk ESS below 100, or more than 1 % "
        "divergent transitions); blocking, so the budget split is not computed from untrusted curves. A skipped fit "
        "(too little data) passes with its reason: there are no curves to trust or distrust."
    ),
)
def mmm_converged(mos: MosHome) -> dg.AssetCheckResult:
    from mos_pipelines.mmm import tables

    with mos.connect() as con:
        fit = tables.latest_fit(con)
    if fit is None:
        return dg.AssetCheckResult(passed=True, metadata={"status": "no fit yet"})
    meta: dict[str, str | float | int] = {"status": str(fit["status"]), "reason": str(fit["reason"] or "")}
    if fit["status"] != "skipped":
        meta.update(
            {
                "max_rhat": float(fit["max_rhat"]),
                "min_ess_bulk": float(fit["min_ess_bulk"]),
                "divergences": int(fit["divergences"]),
            }
        )
    return dg.AssetCheckResult(passed=fit["status"] != "not_converged", metadata=meta)
