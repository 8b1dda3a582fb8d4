"""Gate on lookalike scores: a degraded model's scores must not reach activation."""

import dagster as dg

from mos_pipelines.defs._common import warehouse_check
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.lookalike import score_tables


@warehouse_check(
    asset=["ml", "lookalike_scores"],
    name="not_degraded",
    blocking=True,
    description=(
        "Fails when the latest fit of any audience is degraded (recall at the 10 % tier or AUC fell by more than "
        "`degradation` in config/lookalike.yaml against the last accepted fit, beyond the noise of the two holdouts); blocking, so activation "
        "downstream of the scores does not run on a degraded model."
    ),
)
def lookalike_not_degraded(mos: MosHome) -> dg.AssetCheckResult:
    with mos.connect() as con:
        score_tables.ensure_tables(con)
        latest = score_tables.latest_statuses(con)
    degraded = latest[latest["status"] == "degraded"]
    return dg.AssetCheckResult(
        passed=degraded.empty,
        metadata={
            "audiences": len(latest),
            "degraded": dg.MetadataValue.md(
                "none"
                if degraded.empty
                else "\n".join(f"- {r.audience}: {r.status_reason}" for r in degraded.itertuples())
            ),
        },
    )
