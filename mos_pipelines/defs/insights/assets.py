"""Insights and notifications as assets (logic in ``mos_pipelines.insights``)."""

import dagster as dg

from mos_pipelines import skipped
from mos_pipelines.configuration import load_insights as load_config
from mos_pipelines.defs._common import partial_result, warehouse_asset
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.insights import insight_tables
from mos_pipelines.insights.candidate import Skip
from mos_pipelines.insights.notify import notify
from mos_pipelines.insights.pipeline import generate_insights
from mos_pipelines.insights.report import top_markdown, write_report
from mos_pipelines.skipped import SkippedPart

OWNER = "team:marketing-analytics"


@warehouse_asset(
    key=["insights", "insights"],
    group="insights",
    owner=OWNER,
    deps=[
        ["marts", "fct_channel_performance"],
        ["marts", "fct_variant_performance"],
        ["marts", "fct_channel_segment_performance"],
        ["marts", "fct_experiment_holdout"],
        ["ml", "lookalike_scores"],
        ["policy", "icp_scores"],
    ],
    parts="insight families",
    description=(
        "Candidate insights computed from the marts through the semantic layer's metrics — channel comparisons "
        "by region and customer segment, a channel's region vs the others, week-over-week anomalies against a "
        "seasonal baseline, budget pacing, lookalike degradation, email variant winners, lift over the "
        "persistent holdout (fct_experiment_holdout). "
        "Each is tested; q-values by Benjamini–Hochberg within each insight type; significant and material "
        "candidates are `accepted`, the others kept with the reason. Statements are written by the LLM layer (offline "
        "template by default) and checked for grounded numbers. Writes the run's HTML report under "
        "$MOS_HOME/reports/. Config: config/insights.yaml, config/llm.yaml."
    ),
)
def insights(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    config = load_config()
    with mos.connect() as con:
        run = generate_insights(con, config)
        rows = insight_tables.run_insights(con, run.created_at, status=None)
        accepted = rows[rows["status"] == "accepted"]
        # the report's "Not computed" lists this run's families and what upstream assets skipped (audiences, …)
        upstream = [
            Skip(f"{r.asset} · {r.part}", r.reason)
            for r in skipped.current(con).itertuples()
            if r.asset != "/".join(context.asset_key.path)
        ]
        report = write_report(rows, mos.paths.reports_dir, config.report_top, run.skips + upstream, run.llm)
        counts = run.counts()
        metadata = {
            "top_insights": dg.MetadataValue.md(top_markdown(accepted, config.report_top)),
            "report": dg.MetadataValue.path(str(report)),
            "candidates": len(run.candidates),
            "accepted": counts.get("accepted", 0),
            "rejected": dg.MetadataValue.json({k: v for k, v in counts.items() if k != "accepted"}),
            "not_computed": dg.MetadataValue.md(
                "\n".join(f"- **{s.family}**: {s.reason}" for s in run.skips) or "none"
            ),
            "window": f"{run.window_start} to {run.window_end}" if run.window_start else "no data",
            "llm_calls": int(run.llm.get("calls", 0)),
            "llm_cost_usd": float(run.llm.get("cost_usd", 0.0)),
            "llm_rejected_texts": int(run.llm.get("rejected", 0)),
            "seconds": dg.MetadataValue.json(run.seconds),
            "dagster/row_count": len(run.candidates),
        }
        return partial_result(context, con, metadata, [SkippedPart(s.family, s.reason) for s in run.skips])


@warehouse_asset(
    key=["insights", "notifications"],
    group="insights",
    owner=OWNER,
    deps=[["insights", "insights"]],
    description=(
        "Notifications per reader of config/insights.yaml: the latest run's insights ranked by impact × "
        "confidence × novelty × relevance to the reader's objectives, down-weighted by the reader's feedback "
        "(insights.feedback), at most `daily_cap` a day; an insight notified before is sent again only when "
        "its effect changed materially. The full ranking is in insights.notification_rankings. Lookalike "
        "degradation alerts are routed through the same flow."
    ),
)
def notifications(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    config = load_config()
    with mos.connect() as con:
        result = notify(con, config)
    lines = []
    for reader in config.readers:
        mine = result.rankings[result.rankings["reader_id"] == reader.reader_id]
        sent = mine[mine["decision"] == "notified"].sort_values("rank")
        lines.append(
            f"**{reader.name}** ({', '.join(reader.objectives)}): {len(sent)} notified, "
            f"{int((mine['decision'] == 'repeat').sum())} repeats held back, "
            f"{int((mine['decision'] == 'over_daily_cap').sum())} over the daily cap"
        )
    if result.routed:
        context.log.info(f"routed lookalike notifications: {result.routed}")
    return dg.MaterializeResult(
        metadata={
            "readers": dg.MetadataValue.md("\n\n".join(lines) or "no readers configured"),
            "notified": len(result.notified),
            "ranked": len(result.rankings),
            "routed_lookalike_alerts": len(result.routed),
            "dagster/row_count": len(result.notified),
        }
    )
