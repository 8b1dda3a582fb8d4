"""Checks on insights: every accepted insight is traceable to its evidence; none was phrased with a prompt version
whose golden cases failed (blocking: notifications do not read such a run)."""

import dagster as dg

from mos_pipelines.defs._common import md_list, warehouse_check
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.insights import insight_tables
from mos_pipelines.insights.traceability import problems
from mos_pipelines.llm.gate import used_failed_versions


@warehouse_check(
    asset=["insights", "insights"],
    name="statements_traceable",
    description=(
        "Every number in every accepted insight's statement is one of its evidence figures (rounding allowed), "
        "each evidence summary is the sum of its rows, and the effect is the ratio or change of the summary."
    ),
)
def insights_traceable(mos: MosHome) -> dg.AssetCheckResult:
    with mos.connect() as con:
        insight_tables.ensure_tables(con)
        rows = insight_tables.run_insights(con)
    failures = []
    for row in rows.itertuples():
        found = problems(row.insight_type, row.statement, row.effect_size, row.evidence)
        if found:
            failures.append(f"- {row.insight_id} ({row.insight_type}): {'; '.join(found)}")
    return dg.AssetCheckResult(
        passed=not failures,
        metadata={
            "insights": len(rows),
            "untraceable": len(failures),
            "details": dg.MetadataValue.md("\n".join(failures[:50]) or "all traceable"),
        },
    )


@warehouse_check(
    asset=["insights", "insights"],
    name="prompt_versions_passed",
    blocking=True,
    description=(
        "No insight of the latest run was phrased with a prompt version whose latest golden test failed "
        "(ops.prompt_tests, written by `mos prompts test`)."
    ),
)
def insights_prompt_versions_passed(mos: MosHome) -> dg.AssetCheckResult:
    with mos.connect() as con:
        insight_tables.ensure_tables(con)
        rows = insight_tables.run_insights(con)
        found = used_failed_versions(
            con, ((row.insight_id, (row.evidence or {}).get("phrasing")) for row in rows.itertuples())
        )
    return dg.AssetCheckResult(
        passed=not found,
        metadata={"insights": len(rows), "phrased_with_failed_versions": len(found), "details": md_list(found)},
    )
