"""Lookalike degradation: the latest fit of each audience against the last accepted fit it was judged
against (``ml.model_runs``), on recall in the top 10 % tier of the held-out seed."""

from __future__ import annotations

import math

from scipy import stats

from mos_pipelines.insights.candidate import Candidate, RunContext, Skip, key_of, records
from mos_pipelines.lookalike.score_tables import DEGRADATION_ACTION, degradation_notification_id
from mos_pipelines.warehouse import table_exists

LATEST_SQL = """select model_run_id, audience, status, status_reason, recall_at_10, holdout_seed, auc,
    compared_with_run, fitted_at
from ml.model_runs
qualify row_number() over (partition by audience order by fitted_at desc, model_run_id desc) = 1
order by audience"""
RUN_SQL = """select model_run_id, audience, status, recall_at_10, holdout_seed, auc, fitted_at
from ml.model_runs where model_run_id = ?"""
TIER = 10


def lookalike_degradation(ctx: RunContext) -> tuple[list[Candidate], list[Skip]]:
    if not table_exists(ctx.con, "ml", "model_runs"):
        return [], [Skip("lookalike_degradation", "ml.model_runs does not exist: no lookalike audience was fitted")]
    latest = ctx.con.execute(LATEST_SQL).df()
    out = []
    for run in latest.itertuples(index=False):
        if not isinstance(run.compared_with_run, str):
            continue
        before = ctx.con.execute(RUN_SQL, [run.compared_with_run]).df()
        if before.empty or run.recall_at_10 is None or before.at[0, "recall_at_10"] is None:
            continue
        if run.recall_at_10 >= before.at[0, "recall_at_10"]:
            continue  # no drop: nothing to say about degradation
        out.append(_candidate(ctx, run, before.iloc[0]))
    if latest.empty:
        return [], [Skip("lookalike_degradation", "ml.model_runs is empty")]
    return out, []


def _candidate(ctx: RunContext, run, before) -> Candidate:
    n1, n0 = int(run.holdout_seed or 0), int(before["holdout_seed"] or 0)
    p1, p0 = float(run.recall_at_10), float(before["recall_at_10"])
    diff = p1 - p0
    se = math.sqrt(p1 * (1 - p1) / max(n1, 1) + p0 * (1 - p0) / max(n0, 1))
    pooled = (p1 * n1 + p0 * n0) / max(n1 + n0, 1)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / max(n1, 1) + 1 / max(n0, 1)))
    p_value = float(2 * stats.norm.sf(abs(diff) / se0)) if se0 > 0 else (0.0 if diff else 1.0)
    z = float(stats.norm.ppf(0.5 + ctx.config.confidence_level / 2))
    ci_low, ci_high = diff - z * se, diff + z * se
    notification_id = degradation_notification_id(run.model_run_id)
    rows = ctx.con.execute(
        "select model_run_id, audience, status, recall_at_10, holdout_seed, auc, fitted_at from ml.model_runs "
        "where model_run_id in (?, ?) order by fitted_at",
        [run.model_run_id, before["model_run_id"]],
    ).df()
    summary = [
        {
            "fit": "latest",
            "model_run_id": run.model_run_id,
            "status": run.status,
            "recall_at_10": p1,
            "holdout_seed": n1,
            "tier": TIER,
        },
        {
            "fit": "last accepted",
            "model_run_id": before["model_run_id"],
            "status": before["status"],
            "recall_at_10": p0,
            "holdout_seed": n0,
            "tier": TIER,
        },
    ]
    candidate = Candidate(
        key=key_of("lookalike_degradation", run.audience),
        insight_type="lookalike_degradation",
        subject={
            "audience": run.audience,
            "model_run_id": run.model_run_id,
            "status": run.status,
            "notification_id": notification_id,
        },
        objective="operations",
        hypothesis=(
            f"The latest fit of audience {run.audience} finds fewer held-out seed members in its top "
            f"{TIER} % tier than its last accepted fit (H0: same recall; two-proportion z-test)."
        ),
        prompt_id="insight.lookalike_degradation",
        facts={},
        call_to_action=DEGRADATION_ACTION,
        evidence={
            "metric_query": {
                "sql": RUN_SQL.replace("= ?", "in (...)"),
                "metrics": ["recall_at_10"],
                "source": "ml.model_runs",
            },
            "rows": records(rows),
            "summary": summary,
            "statistics": {
                "method": "difference of two proportions (recall at the 10 % tier on held-out "
                "seed members), pooled z-test, Wald interval",
                "difference": diff,
                "ci_low": ci_low,
                "ci_high": ci_high,
                "p_value": p_value,
                "confidence_level": ctx.confidence_pct,
            },
            "lookalike_notification_id": notification_id,
        },
        effect_size=diff,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        impact_usd=None,
        relative_effect=abs(diff),
        direction="lower",
        impact_required=False,
        material_threshold=ctx.config.lookalike_degradation.min_recall_drop,
    )
    if min(n1, n0) < ctx.config.min_events:
        candidate.untestable = f"too little data: {min(n1, n0)} held-out seed members (< {ctx.config.min_events})"
    candidate.facts = {
        "audience": run.audience,
        "recall_now_pct": p1 * 100,
        "recall_before_pct": p0 * 100,
        "tier": TIER,
        "confidence_level": ctx.confidence_pct,
        "ci_low_pts": ci_low * 100,
        "ci_high_pts": ci_high * 100,
        "must_mention": [run.audience],
    }
    return candidate
