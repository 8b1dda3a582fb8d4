"""Identity resolution scored against the simulator's truth, when a truth file is present.

The blocking identity gates (duplicate rate, cluster sizes, convergence) are dbt tests with severity
error, so they stop downstream dbt models inside the same `dbt build` and appear here as blocking
checks; this check adds the quality figures as metadata.
"""

import dagster as dg

from mos_pipelines.defs._common import warehouse_check
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.identity.truth_eval import evaluate_identity

TRUTH_FILE = "identity_truth.csv"
TARGET_F1 = 0.97


@warehouse_check(
    asset=["marts", "dim_customer_identity_map"],
    name="matches_truth",
    description=(
        f"Pairwise and clustered precision/recall/F1 of CRM deduplication and of the whole identity "
        f"map against `$MOS_HOME/truth/{TRUTH_FILE}` (warns below clustered F1 {TARGET_F1}). "
        "Passes without figures when there is no truth (your own data)."
    ),
)
def identity_matches_truth(mos: MosHome) -> dg.AssetCheckResult:
    truth = mos.truth_dir / TRUTH_FILE
    if not truth.exists():
        return dg.AssetCheckResult(passed=True, metadata={"truth": f"no {TRUTH_FILE}: nothing to score"})
    with mos.connect() as con:
        crm = evaluate_identity(con, truth, crm_only=True)
        everything = evaluate_identity(con, truth)
    crm_scores = crm.clusters.pairs
    return dg.AssetCheckResult(
        passed=crm_scores.f1 >= TARGET_F1,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "crm_clustered_precision": crm_scores.precision,
            "crm_clustered_recall": crm_scores.recall,
            "crm_clustered_f1": crm_scores.f1,
            "all_nodes_clustered_f1": everything.clusters.pairs.f1,
            "largest_customer_vs_largest_person": (
                f"{crm.clusters.largest_predicted_cluster} / {crm.clusters.largest_true_entity}"
            ),
            "over_merged_customers": crm.clusters.over_merged_clusters,
            "crm_records": dg.MetadataValue.md(crm.to_markdown()),
            "all_identity_nodes": dg.MetadataValue.md(everything.to_markdown()),
        },
    )
