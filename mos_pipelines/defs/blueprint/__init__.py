"""Approved blueprints as Dagster jobs: one asset per step (``blueprints/<id>/<step>``), one job per blueprint
(``blueprint__<id>``, tagged ``mos/blueprint``) and one daily schedule per blueprint over its horizon. Logic in
``mos_pipelines.blueprint`` (``execution``, ``alerts``, ``progress``).

Checks on every step asset: ``no_regression`` (warning, not blocking: this run's duration and $ against the median
of the step's last successful runs) and, on spending steps, ``within_blueprint_budget`` (blocking: the blueprint's
committed spend has reached its total budget, so the spending steps stopped and what runs after them waits).

Built from the files under ``$MOS_HOME/blueprints`` each time the definitions are built. A draft, a file edited
after approval, an unreadable file or a missing folder gives no job (and never breaks loading); the reason for
each file left out is in ``skipped_files``. The steps are not part of the full build (group ``blueprints``).
"""

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from mos_pipelines.blueprint import alerts, execution, store
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


REGRESSION_CHECK = "no_regression"
BUDGET_CHECK = "within_blueprint_budget"
SCHEDULE_CRON = "0 6 * * *"  # daily at 06:00 UTC: after the nightly loads, one progress row per day


def job_name(blueprint_id: str) -> str:
    return f"blueprint__{blueprint_id}"


def schedule_name(blueprint_id: str) -> str:
    return f"blueprint__{blueprint_id}__daily"


def horizon_window(bp: Blueprint) -> tuple[datetime.date, datetime.date]:
    """The wall-clock days the schedule runs on: from the approval's day to the end of the horizon (inclusive)."""
    assert bp.approval is not None
    start = datetime.datetime.fromisoformat(bp.approval.at).astimezone(datetime.UTC).date()
    return start, start + datetime.timedelta(days=bp.objective.horizon_days - 1)


def in_horizon(bp: Blueprint, moment: datetime.datetime) -> str | None:
    """None when ``moment`` falls in the blueprint's horizon; otherwise why the schedule skips."""
    start, end = horizon_window(bp)
    day = moment.astimezone(datetime.UTC).date() if moment.tzinfo else moment.date()
    if day < start:
        return f"blueprint {bp.blueprint_id} starts on {start} (approved {bp.approval.at if bp.approval else '?'})"
    if day > end:
        return f"blueprint {bp.blueprint_id}'s horizon ended on {end} ({bp.objective.horizon_days} days)"
    return None


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
    checks = [
        dg.AssetCheckSpec(
            REGRESSION_CHECK,
            asset=step_key(bp.blueprint_id, step.id),
            blocking=False,
            description="This run's duration and $ are within the alert factors of the median of the step's last "
            "successful runs (config/blueprint.yaml alerts); a regression also notifies the owner.",
        )
    ]
    if step.type in execution.SPENDING_TYPES:
        checks.append(
            dg.AssetCheckSpec(
                BUDGET_CHECK,
                asset=step_key(bp.blueprint_id, step.id),
                blocking=True,
                description="The blueprint's committed spend (ad spend, sends, LLM) is below its total budget; "
                "otherwise every spending step stops and the steps after it wait.",
            )
        )

    @dg.asset(
        key=step_key(bp.blueprint_id, step.id),
        group_name=GROUP,
        kinds={"python", "duckdb"},
        owners=[OWNER],
        pool=WAREHOUSE_POOL,
        deps=_reads(bp, step, segment_table),
        tags={TAG: bp.blueprint_id},
        check_specs=checks,
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
        settings = load_blueprint()
        check_results = []
        with mos.connect() as con:
            row = execution.execute_step(con, current, now, settings, context.run_id)
            if row.status != "failed":
                verdict = alerts.check_run(con, current, row, settings.alerts)
                check_results.append(
                    dg.AssetCheckResult(
                        check_name=REGRESSION_CHECK,
                        passed=verdict.passed,
                        severity=dg.AssetCheckSeverity.WARN,
                        metadata=verdict.metadata(),
                        description="; ".join(verdict.lines()),
                    )
                )
                if step.type in execution.SPENDING_TYPES:
                    pos = execution.budget_position(con, current, settings)
                    check_results.append(
                        dg.AssetCheckResult(
                            check_name=BUDGET_CHECK,
                            passed=not pos.exceeded,
                            severity=dg.AssetCheckSeverity.ERROR,
                            metadata=pos.metadata(),
                            description=pos.text(),
                        )
                    )
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
        return dg.MaterializeResult(metadata=metadata, check_results=check_results)

    return _step


def horizon_schedule(bp: Blueprint, job: "UnresolvedAssetJobDefinition") -> dg.ScheduleDefinition:
    """Daily at 06:00 UTC, running the job only on the days of the blueprint's horizon (SkipReason otherwise).
    Running by default: approving a blueprint is the decision to run it."""
    start, end = horizon_window(bp)

    @dg.schedule(
        name=schedule_name(bp.blueprint_id),
        cron_schedule=SCHEDULE_CRON,
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        tags={TAG: bp.blueprint_id},
        description=f"Blueprint {bp.blueprint_id}: daily from {start} to {end} (its approval to the end of its "
        f"{bp.objective.horizon_days}-day horizon); each run's checkpoint writes the day's progress.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        moment = context.scheduled_execution_time or datetime.datetime.now(datetime.UTC)
        why = in_horizon(bp, moment)
        if why is not None:
            return dg.SkipReason(why)
        return dg.RunRequest(
            run_key=f"{bp.blueprint_id}:{moment.astimezone(datetime.UTC).date()}", tags={TAG: bp.blueprint_id}
        )

    return _schedule


@dataclass
class Built:
    assets: list[dg.AssetsDefinition] = field(default_factory=list)
    jobs: list["UnresolvedAssetJobDefinition"] = field(default_factory=list)
    schedules: list[dg.ScheduleDefinition] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)


def from_file(path: Path, segment_table: str) -> tuple[list[dg.AssetsDefinition], "UnresolvedAssetJobDefinition"]:
    """The step assets and the job of one blueprint file; ``NotRunnable``/``ConfigError``/... when it cannot run."""
    assets, job, _ = from_file_with_schedule(path, segment_table)
    return assets, job


def from_file_with_schedule(
    path: Path, segment_table: str
) -> tuple[list[dg.AssetsDefinition], "UnresolvedAssetJobDefinition", dg.ScheduleDefinition]:
    """The step assets, the job and the horizon schedule of one blueprint file."""
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
    return assets, job, horizon_schedule(bp, job)


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
            assets, job, schedule = from_file_with_schedule(path, segment_table)
        except Exception as exc:  # any file that cannot run stays out; loading goes on
            built.skipped_files.append(f"{path.name}: {' '.join(str(exc).split())[:300]}")
            continue
        built.assets += assets
        built.jobs.append(job)
        built.schedules.append(schedule)
    return built


def definitions(directory: Path) -> dg.Definitions:
    from mos_pipelines.defs.blueprint.intake import blueprint_intake

    built = build(directory)
    return dg.Definitions(assets=built.assets, jobs=[*built.jobs, blueprint_intake], schedules=built.schedules)
