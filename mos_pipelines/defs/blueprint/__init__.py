"""Approved blueprints as Dagster jobs: one asset per step (``blueprints/<id>/<step>``), one job per blueprint
(``blueprint__<id>``, tagged ``mos/blueprint``). Logic in ``mos_pipelines.blueprint.execution``.

Built from the files under ``$MOS_HOME/blueprints`` each time the definitions are built. A draft, a file edited
after approval, an unreadable file or a missing folder gives no job (and never breaks loading); the reason for
each file left out is in ``skipped_files``. The steps are not part of the full build (group ``blueprints``).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from mos_pipelines.blueprint import execution, store
from mos_pipelines.blueprint.plan import Blueprint, Step
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.settings import WAREHOUSE_POOL

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

GROUP = "blueprints"
TAG = "mos/blueprint"
OWNER = "team:marketing-ops"

# Existing assets a step type reads: lineage in the UI (the steps do not rebuild them).
READS: dict[str, list[list[str]]] = {
    "lookalike_tier": [["ml", "lookalike_scores"]],
    "channel_budget": [["marts", "fct_channel_performance"]],
    "nurture_email": [["marts", "fct_channel_performance"]],
}


def job_name(blueprint_id: str) -> str:
    return f"blueprint__{blueprint_id}"


def step_key(blueprint_id: str, step_id: str) -> dg.AssetKey:
    return dg.AssetKey([GROUP, blueprint_id, step_id])


def _reads(bp: Blueprint, step: Step, segment_table: str) -> list[dg.AssetKey]:
    keys = [step_key(bp.blueprint_id, d) for d in step.depends_on]
    tables = list(READS.get(step.type, []))
    if step.type == "audience" and "." in str(step.params.get("table", "")):
        tables.append(str(step.params["table"]).split(".", 1))
    elif step.type in ("ad_audience_sync", "crm_sync", "checkpoint"):
        tables.append(segment_table.split(".", 1))
    return keys + [dg.AssetKey(t) for t in tables if dg.AssetKey(t) not in keys]


def step_asset(path: Path, bp: Blueprint, step: Step, segment_table: str) -> dg.AssetsDefinition:
    assert bp.approval is not None
    approved_hash = bp.approval.content_hash

    @dg.asset(
        key=step_key(bp.blueprint_id, step.id),
        group_name=GROUP,
        kinds={"python", "duckdb"},
        owners=[OWNER],
        pool=WAREHOUSE_POOL,
        deps=_reads(bp, step, segment_table),
        tags={TAG: bp.blueprint_id},
        description=f"**{step.title}** ({step.type}, budget ${step.budget_usd:,.2f}) — step of blueprint "
        f"{bp.blueprint_id} revision {bp.revision}: {bp.objective.text!r}. One row per run in `ops.step_runs`.",
    )
    def _step(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
        from mos_pipelines.configuration import load_blueprint

        current = store.validate(path)  # the file as it is now: a later edit is refused, not run
        execution.runnable(current)
        assert current.approval is not None
        if current.approval.content_hash != approved_hash:
            raise dg.Failure(
                f"{path}: approved again since this job was loaded (sha256 {current.approval.content_hash[:12]}, "
                f"the job has {approved_hash[:12]}): reload the code location"
            )
        now = next(s for s in current.steps if s.id == step.id)
        with mos.connect() as con:
            row = execution.execute_step(con, current, now, load_blueprint(), context.run_id)
        meta = {k: v for k, v in row.metadata().items() if v is not None}
        metadata = {
            **meta,
            "dagster/row_count": row.rows or 0,
            "detail": dg.MetadataValue.md(row.detail or ""),
        }
        if row.status == "failed":
            raise dg.Failure(f"step {step.id}: {row.detail}", metadata=metadata)
        if row.status != "ok":
            context.log.warning(f"{step.id} {row.status}: {row.detail}")
        return dg.MaterializeResult(metadata=metadata)

    return _step


@dataclass
class Built:
    assets: list[dg.AssetsDefinition] = field(default_factory=list)
    jobs: list["UnresolvedAssetJobDefinition"] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)


def from_file(path: Path, segment_table: str) -> tuple[list[dg.AssetsDefinition], "UnresolvedAssetJobDefinition"]:
    """The step assets and the job of one blueprint file; ``NotRunnable``/``ConfigError``/... when it cannot run."""
    bp = store.validate(path)
    execution.runnable(bp)
    assets = [step_asset(path, bp, s, segment_table) for s in bp.steps]
    job = dg.define_asset_job(
        name=job_name(bp.blueprint_id),
        selection=dg.AssetSelection.assets(*[step_key(bp.blueprint_id, s.id) for s in bp.steps]),
        description=f"Blueprint {bp.blueprint_id} revision {bp.revision}: {bp.objective.text!r} "
        f"(${bp.budget_usd:,.0f} over {bp.objective.horizon_days} days). Re-execute from failure to resume.",
        tags={TAG: bp.blueprint_id, "mos/blueprint_revision": str(bp.revision)},
    )
    return assets, job


def build(directory: Path) -> Built:
    """Every approved blueprint under ``directory``; the files left out with the reason."""
    built = Built()
    if not directory.is_dir():
        return built
    try:
        from mos_pipelines.configuration import load_blueprint

        segment_table = load_blueprint().segments.table
    except Exception as exc:  # a broken config/blueprint.yaml: no blueprint job, the rest loads
        built.skipped_files.append(f"config/blueprint.yaml: {exc}")
        return built
    for path in sorted(directory.glob("bp_*.yaml")):
        try:
            assets, job = from_file(path, segment_table)
        except Exception as exc:  # any file that cannot run stays out; loading goes on
            built.skipped_files.append(f"{path.name}: {' '.join(str(exc).split())[:300]}")
            continue
        built.assets += assets
        built.jobs.append(job)
    return built


def definitions(directory: Path) -> dg.Definitions:
    from mos_pipelines.defs.blueprint.intake import blueprint_intake

    built = build(directory)
    return dg.Definitions(assets=built.assets, jobs=[*built.jobs, blueprint_intake])
