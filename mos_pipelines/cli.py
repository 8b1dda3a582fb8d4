"""The ``mos`` command: generate a simulated world, build the warehouse, open the Dagster UI."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table

from mos_pipelines.settings import PROJECT_ROOT, configure_environment

if TYPE_CHECKING:
    import duckdb

app = typer.Typer(
    name="mos",
    help="MOS Pipelines: a warehouse-native marketing OS (Dagster + dbt + DuckDB). Data lives in $MOS_HOME (default ./.mos).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an actionable error and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def open_warehouse(
    path: Path, read_only: bool = False, errors: tuple[type[Exception], ...] = ()
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse for one command, closed after the block. A warehouse that cannot be opened, or one
    of ``errors`` raised in the block, ends the command with its message."""
    from mos_pipelines import warehouse

    try:
        con = warehouse.connect(path, read_only=read_only)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    try:
        yield con
    except errors as exc:
        fail(str(exc))
    finally:
        con.close()


@app.command()
def generate(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives byte-identical files.")] = 7,
    people: Annotated[int, typer.Option(min=1, help="Number of people in the world.")] = 1000,
    days: Annotated[int, typer.Option(min=1, help="Days of activity to generate.")] = 30,
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario YAML with planted effects (default: bundled).")
    ] = None,
    start_date: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (default 2026-01-01).")] = None,
) -> None:
    """Generate a simulated marketing world: landing files and ground truth under $MOS_HOME."""
    settings = configure_environment()
    from mos_pipelines.simulation import WorldConfig, generate_world
    from mos_pipelines.simulation.scenario import ScenarioError

    if scenario is not None and not scenario.is_file():
        fail(f"Scenario file not found: {scenario}")
    kwargs = {}
    if start_date:
        try:
            kwargs["start_date"] = date.fromisoformat(start_date)
        except ValueError:
            fail(f"--start-date {start_date!r} is not a date in the form YYYY-MM-DD")
    config = WorldConfig(seed=seed, people=people, days=days, scenario=scenario, **kwargs)
    from mos_pipelines.progress import stage_progress

    try:
        with stage_progress(console) as progress:
            summary = generate_world(config, settings.mos_home, progress=progress)
    except ScenarioError as exc:
        fail(str(exc))
    table = Table(title=f"Simulated world in {settings.mos_home}")
    table.add_column("source")
    table.add_column("files", justify="right")
    table.add_column("rows", justify="right")
    for source, rows in sorted(summary.rows_per_source.items()):
        table.add_row(source, str(summary.files_per_source.get(source, 0)), f"{rows:,}")
    console.print(table)
    console.print(f"Truth files in {settings.truth_dir}. Generated in {summary.seconds:.1f} s. Next: [bold]mos run[/]")


@app.command()
def run(
    select: Annotated[
        str | None,
        typer.Option(
            help="Dagster asset selection, e.g. 'group:raw', 'key:raw/events+', materialized as asked. "
            "Default: what changed since the last build."
        ),
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Materialize every asset of the build, changed or not.")
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(
            help="Build the dbt project on 'duckdb' or 'spark' (a local Spark: the `spark` extra and Java 17; "
            "docs/SPARK.md). Default: config/warehouse.yaml's engine."
        ),
    ] = None,
) -> None:
    """Materialize assets through Dagster against $MOS_HOME (runs appear in the Dagster UI).

    Without --select, as the daily schedule: only the assets whose inputs changed since they were last
    materialized (new landing files, configuration, code, an erasure request…) and what is downstream of them;
    nothing changed, nothing runs."""
    from mos_pipelines import warehouse

    settings = configure_environment()
    if engine is not None:
        os.environ[warehouse.ENGINE_ENV] = engine
    from mos_pipelines.configuration import ConfigError

    try:
        chosen = warehouse.engine()
    except (warehouse.WarehouseError, ConfigError) as exc:
        fail(str(exc))
    if chosen == "spark":
        from mos_pipelines.spark.session import SparkUnavailable, check_available

        try:
            check_available()
        except SparkUnavailable as exc:
            fail(f"engine spark: {exc}")
    from mos_pipelines.ingestion.contracts import SOURCES
    from mos_pipelines.runner import RunSelectionError, run_assets

    if not settings.landing_dir.is_dir() or not any(
        p.is_file() and not p.name.startswith(".") for p in settings.landing_dir.rglob("*")
    ):

        def folder(source) -> str:
            sub = f"<{source.subfolder_column.removesuffix('_folder')}>/" if source.subfolders else ""
            return f"{source.name}/{sub} ({source.format.upper()})"

        where = ", ".join(folder(s) for s in SOURCES.values())
        fail(
            f"Nothing to build: no files under {settings.landing_dir}. Put your files in landing/<source>/ — "
            f"{where} — as README 'Bring your own data' describes, or run `mos generate` for a simulated world."
        )
    with open_warehouse(settings.warehouse_path):  # fail early, with a clear message, if it is locked or unreadable
        pass
    from mos_pipelines.configuration import ConfigError, load_identity

    try:  # the CRM matcher reads it inside dbt, where an error would end in a traceback
        load_identity()
    except ConfigError as exc:
        fail(str(exc))
    from mos_pipelines.runlog import log_path

    log_file = log_path(settings.logs_dir, "run")
    try:
        outcome = run_assets(select, console=console, log_file=log_file, full_refresh=full_refresh)
    except RunSelectionError as exc:
        fail(str(exc))
    blocked = sorted(outcome.plan.blocked.items()) if outcome.plan else []
    for key, why in blocked[:10]:
        err_console.print(f"[yellow]not run:[/] {key}: {why}", soft_wrap=True)
    if not outcome.launched:
        console.print(
            f"Nothing to run: {outcome.plan.summary() if outcome.plan else 'nothing changed'}. "
            "`mos run --full-refresh` materializes everything anyway.",
            soft_wrap=True,
        )
        if blocked:
            fail(
                f"{len(blocked)} assets are not built: a blocking check upstream of them failed on data that has not "
                "changed since (listed above). New landing files re-run it; after changing the check's configuration "
                "run `mos run --full-refresh` (or `--select` the checked asset and its descendants).",
                code=1,
            )
        return
    for run_id in outcome.released:
        console.print(f"run {run_id} was killed: marked failed and its warehouse slot freed", soft_wrap=True)
    for line in outcome.not_loaded:
        err_console.print(f"[bold red]not loaded:[/] {line}", soft_wrap=True)
    if not outcome.success:
        for failure in outcome.failures:
            err_console.print(f"[bold red]failed:[/] {failure}", soft_wrap=True)
        fail(
            f"Run {outcome.run_id} failed. Full log (dbt and Dagster): {log_file}; "
            "the run is in the Dagster UI too (`mos dev`).",
            code=1,
        )
    warned = f", {outcome.checks_warned} warned (parts skipped, see below)" if outcome.checks_warned else ""
    plan = outcome.plan
    unchanged = (
        f"; {len(plan.unchanged)} assets unchanged since their last run, not run" if plan and plan.unchanged else ""
    )
    console.print(
        f"Run {outcome.run_id} succeeded: {outcome.materialized} assets materialized, "
        f"{outcome.checks_passed} checks passed{warned}, {outcome.checks_failed} failed{unchanged}. "
        f"Full log: {log_file}",
        soft_wrap=True,
    )
    summary()
    if outcome.not_loaded:
        fail(
            f"{len(outcome.not_loaded)} domain(s) did not load (listed above) and were not built; everything else was.",
            code=1,
        )


@app.command()
def prepare() -> None:
    """Parse the dbt project into its manifest (what the Dagster definitions are built from) when it changed."""
    configure_environment()
    from mos_pipelines.transform.project import DbtParseError, ensure_manifest

    try:
        manifest = ensure_manifest()
    except DbtParseError as exc:
        fail(str(exc))
    console.print(f"dbt manifest up to date: {manifest}", soft_wrap=True)


activation_app = typer.Typer(
    help="Channel activation: deliver sync models behind the quality gates, inspect the ledger."
)
app.add_typer(activation_app, name="activation")


@activation_app.command("run")
def activation_run(
    destination: Annotated[
        list[str] | None,
        typer.Option(help="A destination of config/activation.yaml (repeat for several). Default: all."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Write what would be sent to $MOS_HOME/activation/dry_run/ instead of sending.")
    ] = False,
) -> None:
    """Deliver now, through Dagster, each destination whose sync model passed every blocking check upstream."""
    settings = configure_environment()
    from mos_pipelines.configuration import ConfigError
    from mos_pipelines.runner import run_activation

    if not settings.warehouse_path.exists():
        fail(f"No warehouse at {settings.warehouse_path}. Run `mos run` first.")
    try:
        outcomes = run_activation(destination, dry_run=dry_run)
    except ConfigError as exc:
        fail(str(exc))
    table = Table(title="Activation" + (" (dry run)" if dry_run else ""))
    for col in ("destination", "result", "rows", "changes", "acked", "dead", "no consent", "held"):
        table.add_column(col, justify="left" if col in ("destination", "result") else "right")
    failed = False
    for o in outcomes:
        m = o.metadata
        if not o.launched:
            result = "[yellow]skipped[/]"
        elif not o.success:
            result, failed = "[bold red]failed[/]", True
        else:
            result = "[green]dry run[/]" if m.get("dry_run") else "[green]delivered[/]"
        table.add_row(
            o.destination,
            result,
            *(
                str(m.get(k, ""))
                for k in (
                    "dagster/row_count",
                    "changes",
                    "acknowledged",
                    "dead_letter",
                    "blocked_consent",
                    "held_for_approval",
                )
            ),
        )
    console.print(table)
    console.print(
        "rows: in the sync model; acked: acknowledged by the destination; dead: dead letters; "
        "no consent: not sent, consent not granted now; held: copy awaiting approval (`mos approvals list`)",
        soft_wrap=True,
    )
    for o in outcomes:
        if not o.launched or not o.success:
            console.print(f"• {o.destination}: {o.reason}", soft_wrap=True)
        elif o.metadata.get("notes"):
            console.print(f"• {o.destination}: {o.metadata['notes']}", soft_wrap=True)
    if failed:
        fail("a delivery failed; details in the Dagster UI (`mos dev`).", code=1)


@activation_app.command("status")
def activation_status() -> None:
    """The ledger per destination and status, changes waiting for an operator, and pending approvals."""
    settings = configure_environment()
    from mos_pipelines.activation import content, ledger

    with open_warehouse(settings.warehouse_path) as con:
        ledger.ensure_tables(con)
        frame = ledger.summary(con)
        stuck = con.execute(
            "select destination, record_key, status, attempts, last_error from ops.activation_ledger "
            "where status in ('dead_letter', 'unknown', 'failed') order by destination, record_key limit 20"
        ).df()
        pending = content.list_approvals(con, "pending")
    table = Table(title="Activation ledger")
    for col in ("destination", "status", "records", "held by the destination"):
        table.add_column(col, justify="left" if col in ("destination", "status") else "right")
    for row in frame.itertuples():
        table.add_row(row.destination, row.status, f"{row.records:,}", f"{row.present:,}")
    console.print(table)
    for row in stuck.itertuples():
        console.print(
            f"• {row.destination} {row.record_key}: {row.status} after {row.attempts} attempt(s): {row.last_error}",
            soft_wrap=True,
        )
    if len(stuck):
        console.print(
            "Send them again after checking: `mos activation requeue --destination NAME --status dead_letter`"
        )
    console.print(f"{len(pending)} copy approval(s) pending (`mos approvals list`).")


@activation_app.command("requeue")
def activation_requeue(
    destination: Annotated[str, typer.Option(help="The destination.")],
    status: Annotated[
        list[str] | None,
        typer.Option(help="dead_letter, unknown or failed (repeat for several). Default: dead_letter."),
    ] = None,
) -> None:
    """Send stuck changes again with their idempotency key (after checking the destination)."""
    settings = configure_environment()
    from mos_pipelines.activation import ledger

    with open_warehouse(settings.warehouse_path, errors=(ValueError,)) as con:
        ledger.ensure_tables(con)
        count = ledger.requeue(con, destination, tuple(status or ["dead_letter"]), ledger.utcnow())
    console.print(f"{count} change(s) of {destination} are pending again; the next delivery sends them.")


approvals_app = typer.Typer(help="Email copy that states a number, a price or a discount waits here for a person.")
app.add_typer(approvals_app, name="approvals")


@approvals_app.command("list")
def approvals_list(
    status: Annotated[str, typer.Option(help="pending, approved, rejected or all.")] = "pending",
) -> None:
    """Copy waiting for (or given) a decision, with the claims that need one."""
    from mos_pipelines.activation import content

    if status not in ("pending", "approved", "rejected", "all"):
        fail(f"--status {status!r}: expected pending, approved, rejected or all")
    with open_warehouse(configure_environment().warehouse_path) as con:
        frame = content.list_approvals(con, None if status == "all" else status)
    if frame.empty:
        console.print(f"No {'' if status == 'all' else status + ' '}approvals.")
        return
    for row in frame.itertuples():
        console.print(
            f"[bold]{row.approval_id}[/] {row.status}  {row.campaign_id}/{row.variant_id} "
            f"({row.renderer})  claims: {', '.join(json.loads(row.claims))}",
            soft_wrap=True,
        )
        console.print(f"  Subject: {row.subject}", soft_wrap=True, markup=False)
        for line in str(row.body).strip().splitlines():
            console.print(f"  | {line}", soft_wrap=True, markup=False)
        if row.decided_by:
            console.print(f"  decided by {row.decided_by} at {row.decided_at}: {row.note or ''}", soft_wrap=True)


def _decide(approval_id: str, decision: str, by: str, note: str | None) -> None:
    from mos_pipelines.activation import content, ledger

    with open_warehouse(configure_environment().warehouse_path, errors=(content.ApprovalError,)) as con:
        content.decide(con, approval_id, decision, by, note, ledger.utcnow())
    console.print(
        f"Approval {approval_id} {decision}. The next delivery "
        f"{'sends' if decision == 'approved' else 'never sends'} this copy."
    )


@approvals_app.command("approve")
def approvals_approve(
    approval_id: Annotated[str, typer.Argument(help="The id shown by `mos approvals list`.")],
    by: Annotated[str, typer.Option(help="Who approves.")] = os.environ.get("USER", "unknown"),
    note: Annotated[str | None, typer.Option(help="Why (kept with the decision).")] = None,
) -> None:
    """Approve copy: recipients waiting for it are sent at the next delivery."""
    _decide(approval_id, "approved", by, note)


@approvals_app.command("reject")
def approvals_reject(
    approval_id: Annotated[str, typer.Argument(help="The id shown by `mos approvals list`.")],
    note: Annotated[str, typer.Option(help="Why it is rejected.")],
    by: Annotated[str, typer.Option(help="Who rejects.")] = os.environ.get("USER", "unknown"),
) -> None:
    """Reject copy: it is never sent (changed copy gets a new approval)."""
    _decide(approval_id, "rejected", by, note)


blueprint_app = typer.Typer(
    help="Blueprints: an objective in words -> a computed goal -> a reviewable plan ($MOS_HOME/blueprints/)."
)
app.add_typer(blueprint_app, name="blueprint")


def _blueprints_dir() -> Path:
    return configure_environment().mos_home / "blueprints"


@blueprint_app.command("new")
def blueprint_new(
    objective: Annotated[
        str | None, typer.Option(help='The objective in words, e.g. "Expand paying customers in the EU".')
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="The objective as YAML: objective, budget_usd, horizon_months.")
    ] = None,
    budget: Annotated[float | None, typer.Option(min=0.01, help="Budget in USD (or say it in the objective).")] = None,
    months: Annotated[
        float | None, typer.Option(min=0.01, help="Horizon in months (or say it in the objective).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file of the same id (it may hold edits).")] = False,
) -> None:
    """Read the objective, gather the warehouse's facts, compute the goal, write the plan for review."""
    from mos_pipelines.blueprint import store
    from mos_pipelines.blueprint.goal import GoalError
    from mos_pipelines.blueprint.objective import ObjectiveError
    from mos_pipelines.blueprint.report import summary_lines
    from mos_pipelines.configuration import ConfigError, load_blueprint

    if (objective is None) == (file is None):
        fail("give the objective with --objective TEXT or --file objective.yaml (one of them)")
    settings = configure_environment()
    from mos_pipelines.blueprint.llm_path import wants_llm
    from mos_pipelines.configuration import load_llm
    from mos_pipelines.llm import LLM, Ledger

    llm_config = load_llm()
    use_llm = wants_llm(llm_config)  # a hosted model writes its calls to ops.llm_calls: the warehouse opens for writing
    with open_warehouse(
        settings.warehouse_path, read_only=not use_llm, errors=(ObjectiveError, GoalError, ConfigError)
    ) as con:
        asked = store.read_objective_file(file) if file else {"text": objective, "budget_usd": None, "months": None}
        d = store.draft(
            con,
            load_blueprint(),
            asked["text"],
            budget if budget is not None else asked["budget_usd"],
            months if months is not None else asked["months"],
            llm=LLM(llm_config, Ledger(con)) if use_llm else None,
        )
    path, written = store.write(_blueprints_dir(), d, force=force)
    for line in summary_lines(d.blueprint):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    console.print(
        f"{'Wrote' if written else 'Kept the existing file (same objective, same data; --force overwrites)'}: {path}",
        soft_wrap=True,
    )
    console.print(
        f"Next: edit it if you wish, then `mos blueprint validate {d.blueprint.blueprint_id}` and "
        f"`mos blueprint approve {d.blueprint.blueprint_id} --by <you>`",
        soft_wrap=True,
    )


@blueprint_app.command("validate")
def blueprint_validate(ref: Annotated[str, typer.Argument(help="A blueprint id or a path to its YAML file.")]) -> None:
    """Check the schema, step references and parameters, that dependencies are acyclic and budgets add up."""
    from mos_pipelines.blueprint import store
    from mos_pipelines.blueprint.goal import GoalError
    from mos_pipelines.configuration import ConfigError, load_blueprint

    try:
        path = store.resolve(_blueprints_dir(), ref)
        bp = store.validate(path)
    except (FileNotFoundError, ConfigError, store.BlueprintInvalid) as exc:
        fail(str(exc))
    console.print(f"ok  {bp.blueprint_id}: {len(bp.steps)} steps, ${bp.budget_usd:,.2f}, {bp.status()}", soft_wrap=True)
    try:
        again = store.recompute_goal(path, bp, load_blueprint())
    except GoalError as exc:
        console.print(f"the goal cannot be recomputed from {bp.context_file}: {exc}", soft_wrap=True)
        return
    if again is None:
        console.print(f"no {bp.context_file or 'context file'} beside it: the goal is not recomputed", soft_wrap=True)
        return
    if not again.changed:
        console.print(f"the steps' budgets buy what the goal says: {again.expected:,.1f}", soft_wrap=True)
        return
    console.print(
        f"As edited, the spending steps buy {again.expected:,.1f} [{again.lower:,.1f}–{again.upper:,.1f}] "
        f"{bp.objective.metric} (the goal was computed for {again.goal_expected or 0:,.1f}; target "
        f"{bp.goal.get('target')} from {bp.goal.get('baseline')}):",
        soft_wrap=True,
    )
    for line in again.lines:
        console.print(line, soft_wrap=True, markup=False, highlight=False)


@blueprint_app.command("diff")
def blueprint_diff(
    ref: Annotated[str, typer.Argument(help="A blueprint id or path.")],
    other: Annotated[
        str | None, typer.Argument(help="Another revision's path. Default: the last kept revision.")
    ] = None,
) -> None:
    """What changed between two revisions (by default: the last generated or approved one -> the file now)."""
    from mos_pipelines.blueprint import store
    from mos_pipelines.configuration import ConfigError

    try:
        path = store.resolve(_blueprints_dir(), ref)
        new, _ = store.load(path)
        kept = store.revisions(path.parent, new.blueprint_id)
        if other is None and not kept:
            fail(f"no kept revision of {new.blueprint_id} to compare with; give a second file")
        old_path = Path(other) if other else kept[-1]
        old, _ = store.load(old_path)
    except (FileNotFoundError, ConfigError) as exc:
        fail(str(exc))
    changes = store.diff(old, new)
    console.print(f"{old_path} -> {path} ({new.status()})", soft_wrap=True)
    for line in changes or ["no changes"]:
        console.print(line, soft_wrap=True, markup=False, highlight=False)


@blueprint_app.command("approve")
def blueprint_approve(
    ref: Annotated[str, typer.Argument(help="A blueprint id or path.")],
    by: Annotated[str, typer.Option(help="Who approves.")] = os.environ.get("USER", "unknown"),
) -> None:
    """Validate, then record the approver and the hash of the approved content (an edit later unapproves it)."""
    from mos_pipelines.blueprint import store
    from mos_pipelines.configuration import ConfigError

    try:
        bp = store.approve(store.resolve(_blueprints_dir(), ref), by=by)
    except (FileNotFoundError, ConfigError, store.BlueprintInvalid, ValueError) as exc:
        fail(str(exc))
    approval = bp.approval
    assert approval is not None  # store.approve() always records one
    console.print(
        f"approved {bp.blueprint_id} revision {bp.revision} by {approval.by} at {approval.at} "
        f"(sha256 {approval.content_hash[:12]})",
        soft_wrap=True,
    )


def _approved_blueprint(ref: str):
    """The file and blueprint of ``ref``, ending the command with the reason unless it is approved as it stands."""
    from mos_pipelines.blueprint import execution, store
    from mos_pipelines.configuration import ConfigError

    try:
        path = store.resolve(_blueprints_dir(), ref)
        bp = store.validate(path)
        execution.runnable(bp)
    except (FileNotFoundError, ConfigError, store.BlueprintInvalid, execution.NotRunnable) as exc:
        fail(str(exc))
    return path, bp


def _launch_blueprint(ref: str, resume: bool) -> None:
    import dagster as dg

    from mos_pipelines.blueprint import execution
    from mos_pipelines.configuration import load_blueprint
    from mos_pipelines.defs import blueprint as wiring
    from mos_pipelines.defs import resources
    from mos_pipelines.runner import QUIET_LOGS, launch_tags, release_killed_runs

    settings = configure_environment()
    path, bp = _approved_blueprint(ref)
    if not settings.warehouse_path.exists():
        fail(f"No warehouse at {settings.warehouse_path}. Run `mos run` first to build it.")
    selection = [s.id for s in bp.steps]
    if resume:
        with open_warehouse(settings.warehouse_path, read_only=True) as con:
            selection = execution.pending_steps(con, bp)
        if not selection:
            console.print(f"{bp.blueprint_id}: every step is done for this approval; nothing to resume", soft_wrap=True)
            _print_status(bp)
            return
        console.print(f"resuming {bp.blueprint_id}: {', '.join(selection)}", soft_wrap=True)
    assets, job = wiring.from_file(path, load_blueprint().segments.table)
    definitions = dg.Definitions.merge(resources.resources(), dg.Definitions(assets=assets, jobs=[job]))
    instance = dg.DagsterInstance.get()
    released, alive = release_killed_runs(instance, wiring.job_name(bp.blueprint_id))
    if alive:
        fail(f"a run of {bp.blueprint_id} is still going ({', '.join(alive)}): wait for it or stop it first")
    for run_id in released:
        console.print(f"run {run_id} was killed: marked failed and its warehouse slot freed", soft_wrap=True)
    result = definitions.resolve_job_def(wiring.job_name(bp.blueprint_id)).execute_in_process(
        instance=instance,
        asset_selection=[wiring.step_key(bp.blueprint_id, s) for s in selection],
        raise_on_error=False,
        run_config=QUIET_LOGS,
        tags={
            "mos/launched_by": "cli",
            wiring.TAG: bp.blueprint_id,
            **launch_tags(),
            **({"mos/resume": "true"} if resume else {}),
        },
    )
    console.print(
        f"run {result.run_id} of job {wiring.job_name(bp.blueprint_id)}: {'succeeded' if result.success else 'FAILED'}",
        soft_wrap=True,
    )
    _print_status(bp)
    over = [e for e in result.get_asset_check_evaluations() if e.check_name == wiring.BUDGET_CHECK and not e.passed]
    if over:
        fail(
            f"the blueprint's budget is reached ({over[0].description}): its spending steps stopped and the steps "
            f"after them did not run. Raise budget_usd and the steps' budgets, `mos blueprint approve "
            f"{bp.blueprint_id}`, then run it again",
            code=1,
        )
    if not result.success:
        fail(f"a step failed: fix its cause, then `mos blueprint resume {bp.blueprint_id}`", code=1)


def _print_status(bp) -> None:
    from mos_pipelines.blueprint import ledger

    settings = configure_environment()
    rows: list[dict] = []
    if settings.warehouse_path.exists():
        with open_warehouse(settings.warehouse_path, read_only=True) as con:
            approved = bp.approval.content_hash if bp.approval is not None else None
            rows = ledger.latest(con, bp.blueprint_id, approved)
    by_step = {r["step_id"]: r for r in rows}
    table = Table(title=f"Blueprint {bp.blueprint_id} revision {bp.revision} ({bp.status()})")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("step", "left"),
        ("status", "left"),
        ("rows", "right"),
        ("budget $", "right"),
        ("LLM $", "right"),
        ("sends", "right"),
        ("sends $", "right"),
        ("ad spend $", "right"),
        ("cost $", "right"),
        ("finished", "left"),
    )
    for col, justify in columns:
        table.add_column(col, justify=justify)
    for step in bp.steps:
        r = by_step.get(step.id)
        if r is None:
            table.add_row(step.id, "not run", "", f"{step.budget_usd:,.2f}", "", "", "", "", "", "")
            continue
        table.add_row(
            step.id,
            r["status"],
            "" if r["rows"] is None else f"{r['rows']:,}",
            f"{r['budget_usd']:,.2f}",
            f"{r['llm_cost_usd']:,.4f}",
            f"{r['sends']:,}",
            f"{r['send_cost_usd']:,.2f}",
            f"{r['ad_spend_usd']:,.2f}",
            f"{r['cost_usd']:,.2f}",
            str(r["finished_at"])[:19] if r["finished_at"] else "",
        )
    console.print(table)
    totals = ledger.totals(rows)
    console.print(
        f"cost ${totals['cost_usd']:,.2f} of ${bp.budget_usd:,.2f} (LLM ${totals['llm_cost_usd']:,.2f}, sends "
        f"${totals['send_cost_usd']:,.2f}, ad spend ${totals['ad_spend_usd']:,.2f}); "
        f"{sum(1 for s in bp.steps if s.id not in by_step)} step(s) not run",
        soft_wrap=True,
    )
    for r in rows:
        if r["status"] != "ok" and r["detail"]:
            console.print(
                f"  {r['step_id']} {r['status']}: {r['detail']}", soft_wrap=True, markup=False, highlight=False
            )


@blueprint_app.command("run")
def blueprint_run(ref: Annotated[str, typer.Argument(help="A blueprint id or path (approved).")]) -> None:
    """Run an approved blueprint's steps as its Dagster job; each step appends its row and $ to ops.step_runs."""
    _launch_blueprint(ref, resume=False)


@blueprint_app.command("resume")
def blueprint_resume(ref: Annotated[str, typer.Argument(help="A blueprint id or path (approved).")]) -> None:
    """Run only the steps without a finished row for this approval (after a failed or killed run)."""
    _launch_blueprint(ref, resume=True)


@blueprint_app.command("status")
def blueprint_status(ref: Annotated[str, typer.Argument(help="A blueprint id or path.")]) -> None:
    """Each step's latest run: status, rows, and $ split into LLM, sends and ad spend (from ops.step_runs)."""
    from mos_pipelines.blueprint import store
    from mos_pipelines.configuration import ConfigError

    configure_environment()
    try:
        bp, _ = store.load(store.resolve(_blueprints_dir(), ref))
    except (FileNotFoundError, ConfigError) as exc:
        fail(str(exc))
    _print_status(bp)


def _blueprint_rows(bp) -> tuple[list[dict], list[dict]]:
    """The latest step runs (approved content) and the progress rows of ``bp``; empty without a warehouse."""
    from mos_pipelines.blueprint import ledger, progress

    settings = configure_environment()
    if not settings.warehouse_path.exists():
        return [], []
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        approved = bp.approval.content_hash if bp.approval is not None else None
        frame = progress.read(con, bp.blueprint_id)
        return ledger.latest(con, bp.blueprint_id, approved), frame.to_dict(orient="records")


@blueprint_app.command("show")
def blueprint_show(
    ref: Annotated[str, typer.Argument(help="A blueprint id or path.")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the plan DAG as a self-contained HTML page to this file.")
    ] = None,
) -> None:
    """The blueprint: goal, arithmetic and steps; with --html, the plan DAG page (steps, edges, latest status/$)."""
    from mos_pipelines.blueprint import store
    from mos_pipelines.blueprint.report import dag_html, summary_lines
    from mos_pipelines.configuration import ConfigError

    configure_environment()
    try:
        bp, _ = store.load(store.resolve(_blueprints_dir(), ref))
    except (FileNotFoundError, ConfigError) as exc:
        fail(str(exc))
    for line in summary_lines(bp):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    if html is not None:
        latest, progress_rows = _blueprint_rows(bp)
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(dag_html(bp, latest, progress_rows))
        console.print(f"plan DAG written to {html} ({len(bp.steps)} steps)", soft_wrap=True)


@blueprint_app.command("progress")
def blueprint_progress(ref: Annotated[str, typer.Argument(help="A blueprint id or path.")]) -> None:
    """blueprints.progress: per day of data, the goal metric against the planned trajectory, $ against plan, steps
    done (written by the checkpoint step)."""
    from mos_pipelines.blueprint import store
    from mos_pipelines.configuration import ConfigError

    configure_environment()
    try:
        bp, _ = store.load(store.resolve(_blueprints_dir(), ref))
    except (FileNotFoundError, ConfigError) as exc:
        fail(str(exc))
    _, rows = _blueprint_rows(bp)
    if not rows:
        fail(
            f"no progress for {bp.blueprint_id} yet: its checkpoint step writes one row per day of data "
            f"(`mos blueprint run {bp.blueprint_id}`)"
        )
    table = Table(
        title=f"Progress of blueprint {bp.blueprint_id}: {bp.objective.metric} in {bp.objective.segment_text()}"
    )
    for col in ("day", "day of", "actual", "planned (interval)", "spent $", "planned $", "steps", "status"):
        table.add_column(col, justify="left" if col in ("day", "status") else "right")
    for r in rows:
        table.add_row(
            str(r["day"])[:10],
            f"{r['days_elapsed']}/{r['horizon_days']}",
            f"{r['actual']:,.0f}",
            f"{r['planned']:,.1f} [{r['planned_lower']:,.1f}–{r['planned_upper']:,.1f}]",
            f"{r['spent_usd']:,.2f}",
            f"{r['planned_spend_usd']:,.2f}",
            f"{r['steps_done']}/{r['steps_total']}",
            r["status"],
        )
    console.print(table)
    last = rows[-1]
    console.print(
        f"goal {bp.goal.get('baseline')} -> {bp.goal.get('target')} by day {last['horizon_days']}; latest "
        f"{str(last['day'])[:10]}: {last['status']}"
        + (f" (insight {last['insight_id']}: `mos insights`)" if isinstance(last.get("insight_id"), str) else ""),
        soft_wrap=True,
    )


@blueprint_app.command("tools")
def blueprint_tools() -> None:
    """The context providers as tools (name, description, JSON schema of the parameters)."""
    from mos_pipelines.blueprint.context import tools

    print(json.dumps(tools(), indent=2))


@app.command()
def summary() -> None:
    """Print what the warehouse holds: rows per layer, quarantined rows, ingested files."""
    settings = configure_environment()
    from mos_pipelines.summary import warehouse_summary

    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        found = warehouse_summary(con, truth_file=settings.truth_dir / "identity_truth.csv")
    console.print(f"Warehouse: {settings.warehouse_path}", soft_wrap=True)
    layers = Table(title="Rows per layer")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("schema", "left"),
        ("tables", "right"),
        ("views", "right"),
        ("rows in tables", "right"),
    )
    for col, justify in columns:
        layers.add_column(col, justify=justify)
    for schema, (tables, views, rows) in found.layers.items():
        layers.add_row(schema, str(tables), str(views), f"{rows:,}")
    console.print(layers)
    quarantine = Table(title="Ingestion (landing → raw)")
    for col in ("source", "files", "unreadable", "rows loaded", "quarantined"):
        quarantine.add_column(col, justify="left" if col == "source" else "right")
    for row in found.ingestion:
        quarantine.add_row(
            row.source, str(row.files), str(row.unreadable), f"{row.rows_loaded:,}", f"{row.rows_quarantined:,}"
        )
    console.print(quarantine)
    for source, reason, n in found.top_quarantine_reasons:
        console.print(f"  quarantined {n:,} × {source}: {reason}")
    for line in found.highlights:
        console.print(f"• {line}")
    if found.gates:
        gates = Table(title="Quality gates (latest result of each)")
        for col in ("gate", "asset", "result", "observed", "threshold"):
            gates.add_column(col)
        for g in found.gates:
            observed = "n/a" if g.observed is None else f"{g.observed:.4g}"
            gates.add_row(
                g.check_name, g.asset, "[green]pass[/]" if g.passed else "[bold red]FAIL[/]", observed, g.threshold
            )
        console.print(gates)
    if found.skipped:
        console.print("[bold]Not computed in the latest run[/] (the rest was; check `all_parts_computed` in the UI):")
        for asset, part, reason in found.skipped:
            console.print(f"  {asset} · {part}: {reason}", soft_wrap=True)
    console.print("Dagster UI: [bold]make dev[/] (or `mos dev`), then open http://127.0.0.1:3000")


identity_app = typer.Typer(help="Identity resolution: explain a pair of CRM records, evaluate the customer map.")
app.add_typer(identity_app, name="identity")


@identity_app.command("evaluate")
def identity_evaluate(
    truth: Annotated[Path, typer.Option(help="Truth CSV with columns source, source_record_id, true_entity_id.")],
    crm_only: Annotated[bool, typer.Option(help="Score only CRM records (the deduplication figure).")] = False,
) -> None:
    """Pairwise and cluster-level precision/recall/F1, largest clusters and over-merges vs the truth."""
    settings = configure_environment()
    from mos_pipelines.identity.evaluation import TruthFileError
    from mos_pipelines.identity.truth_eval import evaluate_identity

    if not truth.is_file():
        fail(f"Truth file not found: {truth}")
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        try:
            result = evaluate_identity(con, truth, crm_only=crm_only)
        except TruthFileError as exc:
            fail(str(exc))
        except Exception as exc:  # e.g. the identity models were never built
            fail(
                f"Cannot read marts.dim_customer_identity_map in {settings.warehouse_path}: {exc}. Run `mos run` first."
            )
    console.print(result.to_markdown(), soft_wrap=True)


@identity_app.command("explain")
def identity_explain(
    record_a: Annotated[str, typer.Argument(help="A contact record key, e.g. generic:123 or hubspot:45.")],
    record_b: Annotated[str, typer.Argument(help="Another contact record key.")],
) -> None:
    """Why two CRM contact records did or did not match: each comparison's level, m, u and weight, the
    prior, the total, the blocking rules that paired them, and the cluster each ended in."""
    settings = configure_environment()
    from mos_pipelines.identity.explain import ExplainError, explain, to_text

    with open_warehouse(settings.warehouse_path, read_only=True, errors=(ExplainError,)) as con:
        result = explain(con, record_a, record_b)
    console.print(to_text(result), soft_wrap=True, markup=False, highlight=False)


lookalike_app = typer.Typer(help="Lookalike audiences: score any CSV with the same model the warehouse uses.")
app.add_typer(lookalike_app, name="lookalike")


@lookalike_app.command("score")
def lookalike_score(
    input: Annotated[
        Path, typer.Option("--input", help="CSV with one row per person: features, an id and a seed flag.")
    ],
    id_column: Annotated[str, typer.Option(help="Column that identifies a row (excluded from the features).")],
    seed_column: Annotated[str, typer.Option(help="Column marking seed members: 1/0, true/false or yes/no.")],
    out: Annotated[Path, typer.Option(help="Where to write the scores of the non-seed rows (CSV).")],
    model: Annotated[
        str | None,
        typer.Option(help="gradient_boosting or linear (transparent). Default: model.kind of config/lookalike.yaml."),
    ] = None,
    min_seed_size: Annotated[
        int | None,
        typer.Option(
            min=1, help="Refuse seeds smaller than this. Default: model.min_seed_size of config/lookalike.yaml."
        ),
    ] = None,
    random_state: Annotated[
        int | None,
        typer.Option(
            help="Seed of every random choice (same input, same output). Default: model.random_state of config/lookalike.yaml."
        ),
    ] = None,
) -> None:
    """Fit seed vs the other rows, print the held-out evaluation and write id, score, percentile, tier."""
    from pydantic import ValidationError

    from mos_pipelines.configuration import ConfigError, load_lookalike
    from mos_pipelines.lookalike.csv_scoring import score_csv
    from mos_pipelines.lookalike.model import LookalikeError

    try:
        configured = load_lookalike().model
    except ConfigError as exc:
        fail(str(exc))
    given = {"kind": model, "min_seed_size": min_seed_size, "random_state": random_state}
    try:
        settings = configured.model_validate(
            {**configured.model_dump(), **{k: v for k, v in given.items() if v is not None}}
        )
    except ValidationError as exc:
        fail("; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors()))
    try:
        with console.status(f"Fitting a {settings.kind} lookalike model on {input} ..."):
            result = score_csv(input, id_column, seed_column, settings)
    except LookalikeError as exc:
        fail(str(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    result.scores.to_csv(out, index=False)
    ev, sizes = result.fit.evaluation, result.fit.sizes
    console.print(
        f"{result.rows} rows: seed {sizes['seed']} ({sizes['holdout_seed']} held out), "
        f"population {sizes['population']}; features: {len(result.spec.numeric)} numeric, "
        f"{len(result.spec.categorical)} categorical"
        + (
            f"; left out: {', '.join(f'{c} ({r})' for c, r in result.spec.dropped.items())}"
            if result.spec.dropped
            else ""
        )
    )
    table = Table(
        title=f"Held-out seed vs {ev.eval_population} unseen population rows (model {result.fit.model_version})"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row(
        "AUC", f"{ev.auc:.3f}" + (f" (95 % interval {ev.auc_ci[0]:.3f}–{ev.auc_ci[1]:.3f})" if ev.auc_ci else "")
    )
    table.add_row("average precision", f"{ev.average_precision:.3f}")
    for tier in sorted(ev.recall_at):
        table.add_row(f"recall / lift at top {tier} %", f"{ev.recall_at[tier]:.3f} / {ev.lift_at[tier]:.2f}x")
    console.print(table)
    top = ", ".join(f"{k} {v:.3f}" for k, v in list(result.fit.importances.items())[:5])
    console.print(f"Most important features (AUC drop when shuffled): {top}")
    console.print(f"Wrote {len(result.scores)} scored rows to {out}")


experiments_app = typer.Typer(help="Experiments: sample sizes, A/B tests with holdouts, offline policy evaluation.")
app.add_typer(experiments_app, name="experiments")


def _experiments_config():
    from mos_pipelines.configuration import ConfigError, load_experiments

    try:
        return load_experiments()
    except ConfigError as exc:
        fail(str(exc))


@experiments_app.command("sample-size")
def experiments_sample_size(
    baseline: Annotated[float, typer.Option(help="Conversion rate of the control (or holdout), e.g. 0.05.")],
    mde: Annotated[
        float | None, typer.Option(help="Smallest effect worth detecting (absolute; see --relative).")
    ] = None,
    relative: Annotated[bool, typer.Option(help="Read --mde as a relative lift (0.1 = +10 %).")] = False,
    n_per_arm: Annotated[
        int | None, typer.Option(help="Exposures per arm you have: prints the detectable effect.")
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="Two-sided significance level (default: config stats.alpha).")
    ] = None,
    power: Annotated[float | None, typer.Option(help="Power (default: config stats.power).")] = None,
    ratio: Annotated[
        float, typer.Option(help="Treatment exposures per control exposure (e.g. 9 for a 10 % holdout).")
    ] = 1.0,
) -> None:
    """Sample size per arm for a minimum detectable effect, or the detectable effect for a sample size."""
    from mos_pipelines.experiments.ab_statistics import StatsInputError, minimum_detectable_effect, sample_size

    config = _experiments_config()
    alpha = config.stats.alpha if alpha is None else alpha
    power = config.stats.power if power is None else power
    if (mde is None) == (n_per_arm is None):
        fail("give exactly one of --mde (to get a sample size) or --n-per-arm (to get the detectable effect)")
    try:
        if mde is not None:
            result = sample_size(baseline, mde, relative=relative, alpha=alpha, power=power, ratio=ratio)
        else:
            assert n_per_arm is not None  # exactly one of the two, checked above
            result = minimum_detectable_effect(baseline, n_per_arm, alpha=alpha, power=power, ratio=ratio)
    except StatsInputError as exc:
        fail(str(exc))
    table = Table(title=f"Two-sided test of two proportions, alpha {alpha:g}, power {power:g}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("baseline rate", f"{result.baseline:.4%}")
    table.add_row("treatment rate", f"{result.treatment_rate:.4%}")
    table.add_row("absolute effect", f"{result.absolute_effect:+.4%}")
    table.add_row("relative effect", f"{result.absolute_effect / result.baseline:+.2%}")
    table.add_row("control exposures", f"{result.control_n:,}")
    table.add_row("treatment exposures", f"{result.treatment_n:,}")
    table.add_row("total exposures", f"{result.total_n:,}")
    console.print(table)


@experiments_app.command("compare")
def experiments_compare(
    control_successes: Annotated[int, typer.Option(min=0, help="Successes (conversions) in the control or holdout.")],
    control_exposures: Annotated[
        int, typer.Option(min=1, help="Exposures (recipients, sends) in the control or holdout.")
    ],
    treatment_successes: Annotated[int, typer.Option(min=0, help="Successes in the treatment.")],
    treatment_exposures: Annotated[int, typer.Option(min=1, help="Exposures in the treatment.")],
    alpha: Annotated[float | None, typer.Option(help="Significance level (default: config stats.alpha).")] = None,
    tau: Annotated[
        float | None, typer.Option(help="mSPRT mixing scale (default: config stats.sequential_tau).")
    ] = None,
) -> None:
    """Two-proportion test with intervals, relative lift (e.g. vs the holdout), and an always-valid p-value."""
    from mos_pipelines.experiments.ab_statistics import StatsInputError, msprt, two_proportion_test

    config = _experiments_config()
    alpha = config.stats.alpha if alpha is None else alpha
    tau = config.stats.sequential_tau if tau is None else tau
    try:
        result = two_proportion_test(
            control_successes, control_exposures, treatment_successes, treatment_exposures, alpha=alpha
        )
    except StatsInputError as exc:
        fail(str(exc))
    seq = msprt(
        [control_successes], [control_exposures], [treatment_successes], [treatment_exposures], tau=tau, alpha=alpha
    )
    level = f"{1 - alpha:.0%}"
    table = Table(title="Treatment vs control")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("control rate", f"{result.control_rate:.4%}")
    table.add_row("treatment rate", f"{result.treatment_rate:.4%}")
    table.add_row(
        f"difference ({level} interval)",
        f"{result.difference:+.4%} [{result.difference_lower:+.4%}, {result.difference_upper:+.4%}]",
    )
    if result.lift is None:
        table.add_row("relative lift", "n/a (no control successes)")
    elif result.lift_lower is None:
        table.add_row("relative lift", f"{result.lift:+.2%}")
    else:
        table.add_row(
            f"relative lift ({level} interval)",
            f"{result.lift:+.2%} [{result.lift_lower:+.2%}, {result.lift_upper:+.2%}]",
        )
    table.add_row("z / p-value (fixed horizon)", f"{result.z:.3f} / {result.p_value:.4g}")
    table.add_row("always-valid p-value (mSPRT)", f"{seq.p_value[-1]:.4g}")
    table.add_row(f"always-valid {level} interval", f"[{seq.lower[-1]:+.4%}, {seq.upper[-1]:+.4%}]")
    console.print(table)
    verdict = "significant" if result.significant else "not significant"
    console.print(
        f"Fixed-horizon test: {verdict} at alpha {alpha:g}. If you looked at this test before "
        f"today, use the always-valid p-value ({'significant' if seq.rejected else 'not significant'})."
    )


@experiments_app.command("evaluate")
def experiments_evaluate(
    log: Annotated[
        Path, typer.Option("--log", help="CSV log of a randomized experiment, one row per exposure, in time order.")
    ],
    arm_column: Annotated[str, typer.Option(help="Column with the arm shown.")],
    reward_column: Annotated[str, typer.Option(help="Column with the reward (0/1, or a value such as revenue).")],
    holdout_arm: Annotated[
        str | None, typer.Option(help="Arm that is the holdout: never chosen by the policy.")
    ] = None,
    propensity_column: Annotated[str | None, typer.Option(help="Logging probability of the arm shown (IPS).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Logged rows per policy update (a 'day').")] = 1000,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: config bandit.random_seed).")] = None,
    context_columns: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated per-unit feature columns: also replay the contextual bandit on them "
            "(0/1 rewards; a missing value is a level of its own)."
        ),
    ] = None,
) -> None:
    """Replay the bandit on a logged randomized experiment: its average reward vs uniform and the best arm
    (and, with --context-columns, the contextual bandit beside them)."""
    from mos_pipelines.experiments.offline import LogError, evaluate_contextual, evaluate_log, read_log

    config = _experiments_config()
    context = None if context_columns is None else context_columns.split(",")
    try:
        data = read_log(log, arm_column, reward_column, propensity_column, context_columns=context)
        if context is None:
            result = evaluate_log(data, config.bandit, holdout_arm=holdout_arm, batch_size=batch_size, seed=seed)
            contextual = None
        else:
            contextual = evaluate_contextual(
                data, config.bandit, holdout_arm=holdout_arm, batch_size=batch_size, seed=seed
            )
            result = contextual.base
    except LogError as exc:
        fail(str(exc))
    for warning in result.warnings + (contextual.warnings if contextual is not None else []):
        err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    kind = "rate" if result.binary else "mean reward"
    arms = Table(
        title=f"{log}: {result.rows:,} rows, {len(result.arms)} arms"
        + (f" + holdout {result.holdout_arm!r}" if result.holdout_arm else "")
    )
    for col in ("arm", "rows", kind, "95 % interval", "final share", "reason"):
        arms.add_column(col, justify="left" if col in ("arm", "reason") else "right")
    for arm in result.arms:
        e = result.arm_estimates[arm]
        arms.add_row(
            arm + (" (best)" if arm == result.best_arm else ""),
            f"{e.n:,}",
            f"{e.mean:.4f}",
            f"{e.lower:.4f}–{e.upper:.4f}",
            f"{result.final_shares[arm]:.3f}",
            result.final_reasons[arm],
        )
    if result.holdout is not None:
        h = result.holdout
        arms.add_row(
            f"{result.holdout_arm} (holdout)", f"{h.n:,}", f"{h.mean:.4f}", f"{h.lower:.4f}–{h.upper:.4f}", "never", ""
        )
    console.print(arms)
    method = "replay (uniform log)" if result.method == "replay" else "self-normalised IPS (logged propensities)"
    policies = Table(
        title=f"Average reward per exposure: {method}, policy updated every {batch_size:,} rows "
        f"({result.batches} updates, learned from {result.learned_rows:,} rows)"
    )
    for col in ("policy", "average reward", "95 % interval", "rows"):
        policies.add_column(col, justify="left" if col == "policy" else "right")
    p = result.policy
    policies.add_row("Thompson bandit", f"{p.mean:.4f}", f"[{p.lower:.4f}, {p.upper:.4f}]", f"{p.n:,}")
    if result.policy_ips is not None:
        q = result.policy_ips
        policies.add_row("Thompson bandit (plain IPS)", f"{q.mean:.4f}", f"[{q.lower:.4f}, {q.upper:.4f}]", f"{q.n:,}")
    if contextual is not None:
        c = contextual.policy
        label = f"contextual bandit ({', '.join(contextual.context_columns)})"
        policies.add_row(label, f"{c.mean:.4f}", f"[{c.lower:.4f}, {c.upper:.4f}]", f"{c.n:,}")
        if contextual.policy_ips is not None:
            q = contextual.policy_ips
            policies.add_row(
                "contextual bandit (plain IPS)", f"{q.mean:.4f}", f"[{q.lower:.4f}, {q.upper:.4f}]", f"{q.n:,}"
            )
    u = result.uniform
    policies.add_row("uniform random", f"{u.mean:.4f}", f"[{u.lower:.4f}, {u.upper:.4f}]", f"{u.n:,}")
    b = result.arm_estimates[result.best_arm]
    policies.add_row(
        f"best single arm ({result.best_arm})", f"{b.mean:.4f}", f"[{b.lower:.4f}, {b.upper:.4f}]", f"{b.n:,}"
    )
    if result.holdout is not None and result.lift_vs_holdout is not None:
        h, lift = result.holdout, result.lift_vs_holdout
        policies.add_row(
            f"holdout ({result.holdout_arm})", f"{h.mean:.4f}", f"[{h.lower:.4f}, {h.upper:.4f}]", f"{h.n:,}"
        )
        policies.add_row("bandit − holdout", f"{lift.mean:+.4f}", f"[{lift.lower:+.4f}, {lift.upper:+.4f}]", "")
    if contextual is not None:
        for name, d in (
            ("contextual − best single arm", contextual.vs_best_arm),
            ("contextual − bandit", contextual.vs_bandit),
        ):
            policies.add_row(name, f"{d.mean:+.4f}", f"[{d.lower:+.4f}, {d.upper:+.4f}]", "")
    console.print(policies)
    final = ", ".join(f"{a} {s:.1%}" for a, s in result.final_shares.items())
    console.print(f"Final allocation: {final}")
    if contextual is not None:
        shares = ", ".join(f"{a} {s:.1%}" for a, s in contextual.final_shares.items())
        console.print(
            f"Contextual: learned from {contextual.learned_rows:,} rows over {len(contextual.features) - 1} encoded "
            f"features (levels and numbers); final average allocation {shares} ({contextual.final_reason}); "
            f"weight of the model with features against the one without: {contextual.context_weight:.2f}"
        )
        spread = contextual.coefficients.iloc[1:]
        spread = spread.sub(spread.mean(axis=1), axis=0).abs().max(axis=1).sort_values(ascending=False).head(5)
        if len(spread):
            strongest = ", ".join(f"{name} ({value:.2f})" for name, value in spread.items())
            console.print(f"Features that most change which arm wins (log-odds spread across arms): {strongest}")


@experiments_app.command("simulate-log")
def experiments_simulate_log(
    out: Annotated[Path, typer.Option("--out", help="CSV to write (one row per send, in time order).")],
    scenario: Annotated[Path | None, typer.Option(help="Scenario YAML (default: bundled default.yaml).")] = None,
    campaign: Annotated[str | None, typer.Option(help="Email campaign id (default: the scenario's first).")] = None,
    people: Annotated[int, typer.Option(min=1, help="People in the simulated population.")] = 3000,
    sends_per_person: Annotated[int, typer.Option(min=1, help="Sends per person, spread over the log.")] = 8,
    missing_rate: Annotated[float, typer.Option(min=0.0, max=0.99, help="Share of feature values left empty.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed (same seed and scenario, same log).")] = 7,
) -> None:
    """Write a uniformly randomized email log with per-unit features, drawn from the scenario's true response
    model (its segment_effects make the best variant differ by persona, size or recency), for `evaluate`."""
    from mos_pipelines.simulation.experiment_log import FEATURES, randomized_log
    from mos_pipelines.simulation.scenario import ScenarioError, load_scenario

    if scenario is not None and not scenario.is_file():
        fail(f"Scenario file not found: {scenario}")
    try:
        result = randomized_log(
            seed,
            people,
            load_scenario(scenario),
            campaign,
            sends_per_person=sends_per_person,
            missing_rate=missing_rate,
        )
    except ScenarioError as exc:
        fail(str(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    result.log.to_csv(out, index=False, lineterminator="\n")
    arm, value = result.best_single_arm()
    truth = ", ".join(f"{a} {v:.4f}" for a, v in result.true_rates.mean().items())
    console.print(f"Wrote {len(result.log):,} rows to {out}. True click rate per variant: {truth}.")
    console.print(f"True best single arm {arm} ({value:.4f}); per-unit oracle {result.oracle():.4f}.")
    console.print(
        f"Next: mos experiments evaluate --log {out} --arm-column variant --reward-column clicked "
        f"--context-columns {','.join(FEATURES)}"
    )


@app.command()
def simulate(
    days: Annotated[int, typer.Option(min=1, help="Simulated days of the closed loop.")] = 30,
    scenario: Annotated[Path | None, typer.Option(help="Scenario YAML (default: bundled default.yaml).")] = None,
    people: Annotated[int, typer.Option(min=1, help="People in the simulated world.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the world (same seed and scenario, same run).")] = 7,
    full_build: Annotated[
        bool,
        typer.Option(
            help="Materialize the dbt models through Dagster every day (slow) "
            "instead of reading the ingested raw tables."
        ),
    ] = False,
    fresh: Annotated[
        bool, typer.Option(help="Delete the landing zone, truth and warehouse of $MOS_HOME first.")
    ] = False,
    blueprint: Annotated[
        str | None,
        typer.Option(
            help="An approved blueprint (id or file): the world of $MOS_HOME answers what it buys for --days days, "
            "against the same dollars on today's default schedule.",
        ),
    ] = None,
) -> None:
    """Closed loop: every day build → allocate → send (the world answers) → next day; regret vs oracle and uniform.
    With --blueprint: the blueprint against today's default schedule on the world it was planned on."""
    if blueprint is not None:
        _simulate_blueprint(blueprint, days)
        return
    settings = configure_environment()
    from mos_pipelines import warehouse
    from mos_pipelines.simulation.closed_loop import LoopSettings, run_closed_loop
    from mos_pipelines.simulation.respond import SendsError
    from mos_pipelines.simulation.scenario import ScenarioError

    if scenario is not None and not scenario.is_file():
        fail(f"Scenario file not found: {scenario}")
    existing = settings.landing_dir.is_dir() and any(settings.landing_dir.rglob("*.*"))
    if existing and not fresh:
        fail(
            f"{settings.landing_dir} already holds landing files; the closed loop builds its own world. Point "
            "MOS_HOME at an empty folder, or pass --fresh to delete the landing zone, truth and warehouse first."
        )
    if fresh:
        for path in (settings.landing_dir, settings.truth_dir):
            shutil.rmtree(path, ignore_errors=True)
        settings.warehouse_path.unlink(missing_ok=True)
        Path(f"{settings.warehouse_path}.wal").unlink(missing_ok=True)
    config = _experiments_config()
    loop = LoopSettings(days=days, people=people, seed=seed, scenario=scenario, full_build=full_build)
    from mos_pipelines.progress import make_progress

    try:
        with make_progress(console) as bars:
            task = bars.add_task("closed loop", total=days)

            def progress(done: int, total: int, label: str) -> None:
                bars.update(task, completed=done, description=label)

            result = run_closed_loop(settings.mos_home, loop, config, progress)
    except (ScenarioError, SendsError, warehouse.WarehouseError, RuntimeError) as exc:
        fail(str(exc))
    table = Table(
        title=f"Closed loop '{result.scenario}' ({result.mode} mode): {days} days, {people:,} people, "
        f"seed {seed}, run {result.run_id}"
    )
    table.add_column("per experiment")
    summary = result.summary
    for experiment_id in summary["experiment_id"]:
        table.add_column(str(experiment_id), justify="right")

    def ratio(value: float) -> str:
        return "n/a" if value != value else f"{value:.1%}"

    for label, column, fmt in (
        ("treated sends", "sends", lambda v: f"{int(v):,}"),
        ("sent the best arm", "best_arm_share", ratio),
        ("expected reward: bandit", "bandit_expected_reward", lambda v: f"{v:.1f}"),
        ("expected reward: uniform", "uniform_expected_reward", lambda v: f"{v:.1f}"),
        ("expected reward: oracle", "oracle_expected_reward", lambda v: f"{v:.1f}"),
        ("regret: bandit", "bandit_regret", lambda v: f"{v:.1f}"),
        ("regret: uniform", "uniform_regret", lambda v: f"{v:.1f}"),
        ("bandit / uniform regret", "regret_ratio", ratio),
        ("realised clicks", "realized_clicks", lambda v: f"{int(v):,}"),
    ):
        table.add_row(label, *(fmt(v) for v in summary[column]))
    console.print(table)
    console.print(
        f"Holdout: {result.holdout_members:,} units, {result.holdout_violations} ever sent an email of "
        f"their experiment. Rewards are expected goal successes from the world's truth; regret is the "
        f"oracle's (best arm per true region) minus the policy's. Results in "
        f"experiments.simulation_results; finished in {result.seconds:.1f} s."
    )


def _simulate_blueprint(ref: str, days: int) -> None:
    from mos_pipelines.configuration import load_blueprint
    from mos_pipelines.simulation.blueprint_world import SimulationError, simulate_blueprint

    settings = configure_environment()
    _path, bp = _approved_blueprint(ref)
    if not settings.warehouse_path.exists():
        fail(
            f"No warehouse at {settings.warehouse_path}: `mos generate`, `mos run`, then plan and approve a blueprint."
        )
    began = time.perf_counter()
    run_id = f"simulate-{bp.blueprint_id}-{days}d"
    config = load_blueprint()
    with open_warehouse(settings.warehouse_path, errors=(SimulationError,)) as con:
        result = simulate_blueprint(con, settings.truth_dir, bp, config, days, run_id)
    goal = result.goal_for_days
    table = Table(
        title=f"Blueprint {bp.blueprint_id} on the simulated world '{result.scenario}': {days} days of "
        f"{result.horizon_days}, {bp.objective.metric} in {bp.objective.segment_text()}"
    )
    for column in ("policy", "spent $", "sends", "sessions", "new", "expected", "new/$1k", "exp./$1k"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for r in result.results:
        table.add_row(
            r.policy.replace("_", " "),
            f"{r.spend_usd:,.0f}",
            f"{r.sends:,}",
            f"{r.sessions:,}",
            f"{r.new_customers:,}",
            f"{r.expected_new_customers:,.1f}",
            f"{r.per_thousand_usd:.2f}",
            f"{r.expected_per_thousand_usd:.2f}",
        )
    console.print(table)
    console.print(
        f"new: {bp.objective.metric} gained in the segment (drawn); expected: the truth's expectation of the same "
        "over what reached each person; sessions: paid sessions and email click-throughs bought.",
        soft_wrap=True,
    )
    weeks = result.weekly(bp, config.progress.min_days)
    if not weeks.empty:
        console.print(
            "Week by week (the blueprint, drawn, against the plan's trajectory): "
            + "; ".join(
                f"day {w.day}: {w.new_customers} vs {w.planned_gain:g} [{w.lower_gain:g}–{w.upper_gain:g}]"
                + (" BEHIND" if w.status == "behind" else "")
                for w in weeks.itertuples()
            ),
            soft_wrap=True,
        )
    mine, base = result.result("blueprint"), result.result("default_schedule")
    if goal is not None and goal > 0:
        console.print(
            f"Goal attainment: {mine.new_customers:,} new of the goal's {goal:,.1f} for {days} days "
            f"({mine.new_customers / goal:.0%}; the truth expected {mine.expected_new_customers / goal:.0%}).",
            soft_wrap=True,
        )
    if base.expected_per_thousand_usd > 0:
        console.print(
            f"Per $1,000 the blueprint buys {mine.expected_per_thousand_usd / base.expected_per_thousand_usd:.2f}× "
            "what today's default schedule buys (expected, from the truth).",
            soft_wrap=True,
        )
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True)
    console.print(
        f"Rows in blueprints.simulations (run {run_id}); {time.perf_counter() - began:.1f} s.", soft_wrap=True
    )


insights_app = typer.Typer(help="Insights Hub: the latest run's insights, and feedback on notifications.")
app.add_typer(insights_app, name="insights")


@insights_app.callback(invoke_without_command=True)
def insights_show(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many insights to print.")] = 10,
    rejected: Annotated[bool, typer.Option(help="Print the rejected candidates and why, instead.")] = False,
    reader: Annotated[str | None, typer.Option(help="Print this reader's notifications of the latest run.")] = None,
) -> None:
    """Print the top insights of the latest run (what to do, and the evidence behind it)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = configure_environment()
    from mos_pipelines.insights import insight_tables
    from mos_pipelines.warehouse import table_exists

    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        if not table_exists(con, "insights", "insights"):
            fail(
                f"No insights in {settings.warehouse_path} yet. Run `mos run` (or `mos run --select 'group:insights'`)."
            )
        if reader:
            _print_notifications(con, reader, limit)
            return
        rows = insight_tables.run_insights(con, status=None)
    if rows.empty:
        fail("The insights table is empty. Run `mos run --select 'group:insights'`.")
    shown = rows[rows["status"] != "accepted"] if rejected else rows[rows["status"] == "accepted"]
    created_at = rows["created_at"].iloc[0]
    table = Table(
        title=f"{'Rejected candidates' if rejected else 'Top insights'} of the run at {created_at:%Y-%m-%d %H:%M} "
        f"UTC ({int((rows['status'] == 'accepted').sum())} insights of {len(rows)} candidates)",
        show_lines=True,
    )
    table.add_column("#", justify="right")
    table.add_column("insight")
    table.add_column("do this" if not rejected else "why rejected")
    table.add_column("q", justify="right")
    table.add_column("impact $", justify="right")
    table.add_column("id", no_wrap=True, min_width=16)
    for i, row in enumerate(shown.head(limit).itertuples(), start=1):
        third = row.call_to_action if not rejected else str((row.evidence.get("decision") or {}).get("reason"))
        q = "" if row.q_value != row.q_value else f"{row.q_value:.2g}"
        impact = "" if row.impact_usd != row.impact_usd or row.impact_usd is None else f"{row.impact_usd:,.0f}"
        table.add_row(str(i), f"[bold]{row.insight_type}[/]\n{row.statement}", third or "", q, impact, row.insight_id)
    console.print(table)
    report = settings.reports_dir / "insights_latest.html"
    if report.exists():
        console.print(f"Report with charts and evidence: {report}", soft_wrap=True)
    console.print("Evidence of one insight: select evidence from insights.insights where insight_id = '<id>'")


def _print_notifications(con, reader: str, limit: int) -> None:
    frame = con.execute(
        """select notification_id, rank, status, title, message, suggested_action, created_at
        from insights.notifications where reader_id = ?
        order by created_at desc, rank limit ?""",
        [reader, limit],
    ).df()
    if frame.empty:
        fail(f"No notifications for reader {reader!r} (readers are listed in config/insights.yaml).")
    table = Table(title=f"Notifications of {reader}", show_lines=True)
    table.add_column("id", no_wrap=True, min_width=16)
    for column in ("rank", "status", "notification", "do this"):
        table.add_column(column)
    for row in frame.itertuples():
        table.add_row(
            row.notification_id,
            str(row.rank),
            row.status,
            f"[bold]{row.title}[/]\n{row.message}",
            row.suggested_action or "",
        )
    console.print(table)
    console.print(
        f"Feedback: mos insights feedback <id> --reader {reader} --verdict useful|not_useful|mark_as_completed"
    )


@insights_app.command("feedback")
def insights_feedback(
    notification_id: Annotated[str, typer.Argument(help="The notification's id (see `mos insights --reader R`).")],
    reader: Annotated[str, typer.Option(help="Who gives the feedback (a reader of config/insights.yaml).")],
    verdict: Annotated[str, typer.Option(help="useful, not_useful or mark_as_completed.")],
    note: Annotated[str | None, typer.Option(help="Free text kept with the feedback.")] = None,
) -> None:
    """Record feedback on a notification; it changes that reader's next ranking."""
    settings = configure_environment()
    from mos_pipelines.insights import insight_tables

    with open_warehouse(settings.warehouse_path, errors=(insight_tables.FeedbackError,)) as con:
        insight_tables.ensure_tables(con)
        insight_tables.record_feedback(con, notification_id, reader, verdict, note)
    console.print(f"Recorded {verdict} from {reader} on {notification_id}; the next `mos run` ranks with it.")


config_app = typer.Typer(
    help="The configuration: what each file of config/ sets, where each value came from, and whether a file is valid."
)
app.add_typer(config_app, name="config")


def _config_domains(domain: str | None) -> list[str]:
    from mos_pipelines.configuration import DOMAINS

    if domain is None:
        return list(DOMAINS)
    if domain not in (*DOMAINS, "dbt", "environment"):
        fail(f"--domain {domain!r}: expected one of {', '.join([*DOMAINS, 'dbt', 'environment'])}")
    return [domain]


@config_app.command("show")
def config_show(
    domain: Annotated[
        str | None,
        typer.Option(
            help="One domain (a file of config/), `dbt` (the vars dbt receives) "
            "or `environment` (the MOS_* variables). Default: all."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: domain -> key -> {value, source}.")] = False,
) -> None:
    """Print the effective configuration: every value, and where it came from (file:line key, or default)."""
    configure_environment()
    from mos_pipelines.configuration import DOMAINS, ConfigError, provenance
    from mos_pipelines.configuration.dbt import dbt_provenance
    from mos_pipelines.configuration.environment import variables

    names = _config_domains(domain)
    if domain is None:
        names += ["dbt", "environment"]
    out: dict[str, dict[str, dict[str, object]]] = {}
    try:
        for name in names:
            if name == "environment":
                rows = [(v.name, v.shown(), v.what) for v in variables()]
            elif name == "dbt":
                rows = dbt_provenance()
            else:
                rows = provenance(name)
            field = "what" if name == "environment" else "source"
            out[name] = {key: {"value": value, field: source} for key, value, source in rows}
    except ConfigError as exc:
        fail(f"{exc}\n(`mos config validate` lists every problem)")
    if as_json:
        print(json.dumps(out, indent=2, default=str))
        return
    for name, entries in out.items():
        if name in DOMAINS:
            header = f"{name}: config/{name}.yaml" + (
                f" + ${DOMAINS[name].env} ({os.environ[DOMAINS[name].env]})"
                if os.environ.get(DOMAINS[name].env)
                else ""
            )
        else:
            header = {"dbt": "dbt: every var handed to dbt with --vars", "environment": "environment"}[name]
        console.print(f"# {header}", markup=False, style="bold")
        for key, row in entries.items():
            if name == "environment":
                line = f"{key} = {row['value']}    # {row['what']}"
            else:
                line = f"{key} = {json.dumps(row['value'])}    <- {row['source']}"
            console.print(line, markup=False, soft_wrap=True, highlight=False)
        console.print()


@config_app.command("validate")
def config_validate(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="A config file to check before using it (merged over the "
            "bundled file of its domain). Default: every domain as it "
            "would be read now (bundled files and MOS_*_CONFIG overrides)."
        ),
    ] = None,
    domain: Annotated[
        str | None, typer.Option(help="The file's domain when its name does not say it (activation, experiments, ...).")
    ] = None,
) -> None:
    """Validate configuration; every problem is printed (file, key, line, expected, got) and the exit code is 2."""
    configure_environment()
    from mos_pipelines.configuration import DOMAINS, ConfigError, load
    from mos_pipelines.configuration.dbt import dbt_vars
    from mos_pipelines.configuration.errors import Problem, display_path

    if domain is not None and domain not in DOMAINS:
        fail(f"--domain {domain!r}: expected one of {', '.join(DOMAINS)}")
    if file is not None:
        name = domain or file.stem
        if name not in DOMAINS:
            fail(
                f"{file}: cannot tell which configuration this is: name it after its domain "
                f"({', '.join(f'{d}.yaml' for d in DOMAINS)}) or pass --domain"
            )
        checks: list[tuple[str, Path | None]] = [(name, file)]
    else:
        checks = [(name, None) for name in ([domain] if domain else DOMAINS)]
    problems: list[Problem] = []
    for name, path in checks:
        try:
            settings = load(name, path)
        except ConfigError as exc:
            problems += exc.problems
            continue
        console.print(f"ok  {name:<12} {' + '.join(display_path(f) for f in settings.files)}", markup=False)
    if file is None and domain is None and not problems:
        try:
            console.print(f"ok  {'dbt':<12} {len(dbt_vars())} vars", markup=False)
        except ConfigError as exc:
            problems += exc.problems
    for problem in problems:
        err_console.print(f"error: {problem}", markup=False, soft_wrap=True, highlight=False)
    if problems:
        raise typer.Exit(2)


policy_app = typer.Typer(
    help="Policy (config/policy.yaml): ICP fit and tiers, lead routing, contact caps; each version hashed."
)
app.add_typer(policy_app, name="policy")


def _load_policy(file: Path | None):
    from mos_pipelines.configuration import ConfigError, load_policy

    try:
        return load_policy(file)
    except ConfigError as exc:
        for problem in exc.problems:
            err_console.print(f"error: {problem}", markup=False, soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None


@policy_app.command("show")
def policy_show(
    file: Annotated[
        Path | None, typer.Argument(help="A policy file merged over the bundled one (default: as read now).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the version and the normalised content as JSON.")
    ] = False,
) -> None:
    """The policy in effect: its version (a hash of the normalised content), its file(s) and its rules. The
    applied policy ($MOS_HOME/policy/active.yaml, written by `mos policy apply`) when there is one, else
    config/policy.yaml with MOS_POLICY_CONFIG merged over it."""
    paths = configure_environment()
    from mos_pipelines.configuration.errors import display_path

    if file is None:
        active = _load_active_policy(paths.mos_home)
        settings, source = active.settings, active.describe()
    else:
        settings = _load_policy(file)
        source = "proposed: " + " + ".join(display_path(f) for f in settings.files)
        active = None
    if as_json:
        payload = {"policy_version": settings.version(), "source": source, "content": settings.content()}
        print(json.dumps(payload, indent=2))
        return

    def out(text: str, **style: str) -> None:
        console.print(text, markup=False, soft_wrap=True, highlight=False, **style)  # type: ignore[arg-type]

    def cap(c) -> str:  # noqa: ANN001
        per_day = f"{c.per_day}/day" if c.per_day is not None else "no daily cap"
        return f"{per_day}, " + (f"{c.per_7_days}/7 days" if c.per_7_days is not None else "no weekly cap")

    out(f"policy version {settings.version()}  ({source})")
    if active is not None and active.ignored_override:
        out(
            f"note: {DOMAINS_POLICY_ENV} ({active.ignored_override}) is ignored while an applied policy is active; "
            f"delete {active.applied_file} to go back to the configured policy",
            style="yellow",
        )
    icp = settings.icp
    out("\nICP fit rules (fit_score = 100 × weights fired / weights evaluated):", style="bold")
    for rule in icp.fit_rules:
        out(f"  {rule.name:<28} {rule.weight:>5g}  {rule.describe()}")
    e = icp.engagement
    out(f"engagement: half-life {e.half_life_days:g} days over {e.lookback_days} days", style="bold")
    for signal in e.signals:
        where = f" where {signal.where}" if signal.where else ""
        out(f"  {signal.name:<28} {signal.weight:>5g}  {signal.relation}{where}")
    t = icp.tiers
    out(
        f"tiers: fit high >= {t.fit.high:g}, medium >= {t.fit.medium:g}; engagement high >= "
        f"{t.engagement.high:g}, medium >= {t.engagement.medium:g}; fit \\ engagement [high, medium, low]: "
        + "; ".join(f"{level} {list(getattr(t.matrix, level))}" for level in ("high", "medium", "low")),
        style="bold",
    )
    r = settings.routing
    out(f"\nrouting: leads are stages {', '.join(r.lead_stages)}; first match wins", style="bold")
    for index, rule in enumerate(r.rules, 1):
        when = (
            ", ".join(f"{k}={v}" if k == "owned" else f"{k} in {list(v)}" for k, v in rule.when.conditions().items())
            if rule.when and not rule.is_catch_all
            else "(catch-all)"
        )
        out(f"  {index}. {rule.name:<26} {when} -> {rule.to}{' (reroute)' if rule.reroute else ''}")
    for name, team in r.teams.items():
        reps = ", ".join(
            f"{rep.id} w{rep.weight:g} cap {rep.capacity}{'' if rep.available else ' (away)'}" for rep in team.reps
        )
        out(f"  team {name} ({team.role}): {reps}")
    c = settings.contact
    out("\ncontact policy (local days of the person's time zone):", style="bold")
    for channel, limit in c.caps.per_channel.items():
        out(f"  cap {channel}: {cap(limit)}")
    out(f"  cap all channels: {cap(c.caps.all_channels)}")
    out(
        f"  quiet hours {c.quiet_hours.start}-{c.quiet_hours.end}; cool-down {c.cooldown.days:g} days after "
        f"{', '.join(c.cooldown.after)}; default time zone {c.time_zones.default}"
    )
    for name, action in c.actions.items():
        needs = [f"channel {action.channel}"]
        if action.consent:
            needs.append(f"consent {action.consent}")
        if action.stages:
            needs.append(f"stages {', '.join(action.stages)}")
        if action.tiers:
            needs.append(f"tiers {', '.join(action.tiers)}")
        needs += [k for k in ("capped", "quiet_hours", "cooldown") if getattr(action, k)]
        out(f"  action {name}: {'; '.join(needs)}")
    _print_warehouse_versions(settings.version())


DOMAINS_POLICY_ENV = "MOS_POLICY_CONFIG"


def _load_active_policy(mos_home: Path):
    from mos_pipelines.configuration import ConfigError
    from mos_pipelines.policy.active import load_active

    try:
        return load_active(mos_home)
    except ConfigError as exc:
        for problem in exc.problems:
            err_console.print(f"error: {problem}", markup=False, soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None


def _print_warehouse_versions(active: str) -> None:
    """The policy versions the warehouse's policy tables were written with (when there is a readable warehouse)."""
    import duckdb

    from mos_pipelines import warehouse

    path = configure_environment().warehouse_path
    if not path.exists():
        return
    try:
        con = warehouse.connect(path, read_only=True)
    except (warehouse.WarehouseError, duckdb.Error):
        console.print(f"\n(the warehouse {path} is busy: versions in use not shown)", markup=False, soft_wrap=True)
        return
    try:
        if not warehouse.table_exists(con, "policy", "versions"):
            return
        rows = con.execute(
            "select policy_version, first_used_at from policy.versions order by first_used_at"
        ).fetchall()
    finally:
        con.close()
    console.print("\nversions in the warehouse (policy.versions):", markup=False, style="bold")
    for version, first_used in rows:
        mark = "  <- active" if version == active else ""
        console.print(f"  {version}  first used {first_used:%Y-%m-%d %H:%M} UTC{mark}", markup=False)


@policy_app.command("validate")
def policy_validate(
    file: Annotated[
        Path | None, typer.Argument(help="A policy file to check, merged over the bundled one (default: as read now).")
    ] = None,
) -> None:
    """Check a policy file: every problem with file, key, line, expected and got (exit 2); else its version."""
    configure_environment()
    from mos_pipelines.configuration.errors import display_path

    settings = _load_policy(file)
    console.print(
        f"ok  policy {settings.version()}  {' + '.join(display_path(f) for f in settings.files)}", markup=False
    )


def _print_policy_diff(d) -> None:  # noqa: ANN001 (change.PolicyDiff, imported late)
    def out(text: str, **style: str) -> None:
        console.print(text, markup=False, soft_wrap=True, highlight=False, **style)  # type: ignore[arg-type]

    summary = d.summary()
    out(
        f"policy {d.from_version} (active) -> {d.to_version} (proposed), on the warehouse's data at {d.evaluated_at} UTC"
    )
    if d.from_version == d.to_version:
        out("the proposed policy is the active one: nothing would change")
    icp = summary["icp"]
    out(f"\nICP tiers: {icp['customers_changing_tier']} customer(s) change tier", style="bold")
    for move in icp["moves"]:
        out(f"  {move['from_tier'] or '-'} -> {move['to_tier'] or '-'}: {move['customers']}")
    if icp["by_region_segment"]:
        out("  by region / segment:")
        for row in icp["by_region_segment"]:
            out(
                f"    {row['region']:<8} {row['segment']:<16} {row['from_tier']} -> {row['to_tier']}: {row['customers']}"
            )
    r = summary["routing"]
    out(
        f"\nrouting: {r['leads_changing']} lead(s) change: {r['rerouted']} rerouted by a reroute rule, "
        f"{r['not_yet_routed_routed_differently']} not routed yet and routed differently",
        style="bold",
    )
    for move in r["moves"]:
        out(f"  {move['change']:<15} {move['from_team']} -> {move['to_team']}: {move['leads']}")
    e = summary["eligibility"]
    out(f"\ncontact eligibility: {e['pairs_changing']} customer x action pair(s) change", style="bold")
    for action, counts in e["by_action"].items():
        out(
            f"  {action}: allowed -> blocked {counts['allowed_to_blocked']}, blocked -> allowed "
            f"{counts['blocked_to_allowed']}, action added/removed {counts['added_or_removed']}"
        )
        for reason, n in list(counts["newly_blocked_by"].items())[:5]:
            out(f"      newly blocked: {reason} ({n})")
        for reason, n in list(counts["no_longer_blocked_by"].items())[:5]:
            out(f"      no longer blocked: {reason} ({n})")
    n = summary["decisions"]
    out(f"\nnext best action today: {n['people_changing']} person(s) change action", style="bold")
    for move in n["moves"]:
        out(f"  {move['from_action']} -> {move['to_action']}: {move['people']}")
    for action, counts in n["sends"].items():
        out(f"  {action}: sends +{counts['added']} / -{counts['removed']}")
    for side in ("active", "proposed"):
        x = n["expected"].get(side)
        if x:
            out(
                f"  {side}: {x['actions']} action(s), expected extra conversions {x['expected_conversions']:g} "
                f"(95 % interval {x['expected_conversions_low']:g} to {x['expected_conversions_high']:g}), "
                f"cost ${x['cost_usd']:,.2f}"
            )
    if d.baseline:
        out("\nalso written by apply (not caused by the proposal):", style="bold")
        for note in d.baseline:
            out(f"  {note}")
    for part in d.skipped:
        out(f"skipped: {part}", style="yellow")


def _policy_warehouse(read_only: bool):
    import duckdb

    from mos_pipelines import warehouse

    path = configure_environment().warehouse_path
    if not path.exists():
        err_console.print(f"error: no warehouse at {path}: run `mos run` first", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    try:
        return warehouse.connect(path, read_only=read_only)
    except (warehouse.WarehouseError, duckdb.Error) as exc:
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None


@policy_app.command("diff")
def policy_diff(
    proposed: Annotated[
        Path,
        typer.Option(
            "--proposed",
            help="The proposed policy file, read as `mos policy validate FILE` reads it (merged "
            "over config/policy.yaml).",
            exists=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """What a proposed policy would change against the active one on the warehouse's data, without writing:
    ICP tier changes (by region and segment), leads that would change rep (routing is sticky: a routed lead moves
    only by a `reroute` rule), contact eligibility per action (allowed <-> blocked, with the reasons), and today's
    next best action per person (sends added and removed; expected extra conversions and cost of each policy)."""
    paths = configure_environment()
    import datetime

    from mos_pipelines.configuration import load_transform
    from mos_pipelines.policy import change

    candidate = _load_policy(proposed)
    active = _load_active_policy(paths.mos_home)
    con = _policy_warehouse(read_only=True)
    try:
        result = change.diff(
            con,
            active.settings,
            candidate,
            load_transform().mos__marketing_customer_segments,
            datetime.datetime.now(datetime.UTC),
        )
    except RuntimeError as exc:  # a table the policy cannot do without (icp.PolicyInputMissing, no lifecycle)
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        con.close()
    if as_json:
        payload = result.summary()
        payload["customers"] = {
            "tiers": json.loads(result.tiers.to_json(orient="records")),
            "routing": json.loads(result.routing.to_json(orient="records")),
            "eligibility": json.loads(result.eligibility.to_json(orient="records")),
            "decisions": json.loads(result.actions.to_json(orient="records")),
        }
        print(json.dumps(payload, indent=2, default=str))
        return
    _print_policy_diff(result)


@policy_app.command("apply")
def policy_apply(
    file: Annotated[Path, typer.Argument(help="The policy file to make active (merged over config/policy.yaml).")],
    by: Annotated[str | None, typer.Option("--by", help="Who applies it (default: the login name).")] = None,
) -> None:
    """Make a policy file the active policy: validate it, record its version (policy.versions, policy.applied:
    who, when, from and to version, the file's sha256), recompute policy.icp_scores, routing_assignments and
    contact_eligibility with it, and write $MOS_HOME/policy/active.yaml (read by the assets from their next run).
    Applying the active version again changes nothing."""
    paths = configure_environment()
    import datetime
    import getpass

    from mos_pipelines.configuration import load_transform
    from mos_pipelines.policy import change

    candidate = _load_policy(file)
    active = _load_active_policy(paths.mos_home)
    who = by or os.environ.get("USER") or getpass.getuser()
    con = _policy_warehouse(read_only=False)
    try:
        outcome = change.apply(
            con,
            paths.mos_home,
            active.settings,
            candidate,
            file.resolve(),
            load_transform().mos__marketing_customer_segments,
            datetime.datetime.now(datetime.UTC),
            who,
        )
    except RuntimeError as exc:  # nothing was written (one transaction) and the active file is unchanged
        err_console.print(f"error: {exc} (nothing applied)", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        con.close()
    if not outcome.applied:
        console.print(f"no change: {outcome.message}", markup=False)
        return
    assert outcome.diff is not None
    _print_policy_diff(outcome.diff)
    console.print(
        f"\napplied policy {outcome.to_version} (was {outcome.from_version}) -> {outcome.active_file}; "
        "policy tables recomputed, logged in policy.applied",
        markup=False,
        soft_wrap=True,
    )


prompts_app = typer.Typer(
    help="Prompts (mos_pipelines/llm/prompts.py): their golden cases (config/prompts/golden/), current vs proposed."
)
app.add_typer(prompts_app, name="prompts")


def _config_problems(exc) -> NoReturn:  # noqa: ANN001 (ConfigError, imported late)
    for problem in exc.problems:
        err_console.print(f"error: {problem}", markup=False, soft_wrap=True, highlight=False)
    raise typer.Exit(2)


@prompts_app.command("list")
def prompts_list() -> None:
    """Every prompt: id, task, version (a hash of instructions, template and guardrails) and golden cases."""
    configure_environment()
    from mos_pipelines.configuration import ConfigError
    from mos_pipelines.llm.golden import load_golden
    from mos_pipelines.llm.prompts import PROMPTS

    try:
        golden = load_golden()
    except ConfigError as exc:
        _config_problems(exc)
    console.print(f"{'prompt':<30} {'task':<20} {'version':<13} golden cases", markup=False, style="bold")
    for prompt_id, prompt in sorted(PROMPTS.items()):
        cases = len(golden.get(prompt_id, []))
        console.print(f"{prompt_id:<30} {prompt.task:<20} {prompt.version:<13} {cases}", markup=False)


def _rate(part: float | None, cases: int) -> str:
    return "not checked" if part is None else f"{round(part * cases)}/{cases} ({part:.0%})"


@prompts_app.command("test")
def prompts_test(
    proposed: Annotated[
        Path | None,
        typer.Option(
            "--proposed",
            help="YAML changing prompts by id: prompts: {<id>: {instructions, template, guardrails}}. Its versions "
            "are tested beside the current ones.",
        ),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            help="Who answers the cases: 'configured' (each task's model in config/llm.yaml; the offline one is "
            "the template), 'template', or any model litellm knows (it is called).",
        ),
    ] = "configured",
    record: Annotated[
        bool,
        typer.Option(
            help="Append the results to ops.prompt_tests of the warehouse (a version that failed is then not used)."
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Run every prompt's golden cases for the current version and, with --proposed, the proposed one: pass rate,
    grounding pass rate, failures (case, rule, offending text). Exit 1 when the proposed version is worse on any
    prompt or a case newly fails (without --proposed: when any case fails), or when a model gave no answer; exit 2
    on an invalid file."""
    paths = configure_environment()
    import datetime

    from mos_pipelines.configuration import ConfigError, load_llm
    from mos_pipelines.llm import gate, golden

    try:
        cases = golden.load_golden()
        changes = golden.load_proposed(proposed) if proposed is not None else {}
        source = golden.answer_source(model, load_llm())
    except ConfigError as exc:
        _config_problems(exc)
    report = golden.run(cases, changes, source)
    note = None
    if record and not paths.warehouse_path.exists():  # nothing to gate without a warehouse; none is created
        note = f"not recorded: no warehouse at {paths.warehouse_path} (the gate reads ops.prompt_tests there)"
    elif record:
        from mos_pipelines import warehouse

        try:
            con = warehouse.connect(paths.warehouse_path)
        except warehouse.WarehouseError as exc:
            note = f"not recorded in ops.prompt_tests: {exc}"
        else:
            try:
                tested = [(role, r) for role, r in report.tested() if r.cases]
                rows = gate.record(con, tested, datetime.datetime.now(datetime.UTC))
                note = f"recorded {rows} version(s) in ops.prompt_tests ({paths.warehouse_path})"
            finally:
                con.close()
    failed = (report.regressed if changes else report.current_failed) or bool(report.unanswered)
    if as_json:
        print(json.dumps({**report.as_dict(), "failed": failed, "note": note}, indent=2, default=str))
        raise typer.Exit(1 if failed else 0)

    def out(text: str, **style: str) -> None:
        console.print(text, markup=False, soft_wrap=True, highlight=False, **style)  # type: ignore[arg-type]

    for c in report.comparisons:
        out(c.prompt_id, style="bold")
        versions = [("current", c.current)] + ([("proposed", c.proposed)] if c.proposed is not None else [])
        for role, r in versions:
            if not r.cases:
                out(f"  {role:<8} {r.version}: no golden cases (config/prompts/golden/{c.prompt_id}.yaml)")
                continue
            out(
                f"  {role:<8} {r.version} ({r.source}): passed {_rate(r.pass_rate, len(r.cases))}, "
                f"grounding {_rate(r.grounding_rate, sum(x.grounded is not None for x in r.cases))}"
            )
            for case in r.cases:
                for f in case.failures:
                    out(f"    FAIL {case.case_id}: {f.rule}: {f.offending}  | {case.text[:160]!r}", style="red")
        for regression in c.regressions:
            out(f"  REGRESSION {regression}", style="bold red")
    if note:
        out(f"\n{note}")
    if report.unanswered:
        out(f"{len(report.unanswered)} case(s) got no answer from the model: not tested", style="bold red")
    verdict = (
        "regression: the proposed prompts are worse (see REGRESSION)"
        if changes and report.regressed
        else "golden cases failed"
        if failed
        else "ok"
    )
    out(verdict, style="bold red" if failed else "bold green")
    raise typer.Exit(1 if failed else 0)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def dbt(ctx: typer.Context) -> None:
    """Run dbt on the project with the configuration's vars: `mos dbt -- build --select fct_sessions`.

    Adds --project-dir and --profiles-dir (dbt_project/) and --vars (every mos__* var; a --vars you pass is merged
    over them), and sets MOS_HOME. dbt's exit code is this command's."""
    configure_environment()
    import subprocess

    from mos_pipelines.configuration import ConfigError
    from mos_pipelines.transform.project import dbt_command

    args = list(ctx.args)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        fail("give dbt's arguments after --, e.g. `mos dbt -- build --select fct_sessions`")
    try:
        command = dbt_command(args)
    except (ConfigError, ValueError) as exc:
        fail(str(exc))
    raise typer.Exit(subprocess.run(command).returncode)


spark_app = typer.Typer(
    help="The dbt project on a local Spark (dbt-spark, session mode; `pip install -e '.[spark]'`, Java 17): "
    "build it from the raw layer DuckDB holds, and compare its marts with the DuckDB build. docs/SPARK.md."
)
app.add_typer(spark_app, name="spark")


def _spark_or_fail():
    from mos_pipelines.spark.session import SparkUnavailable, spark_session

    try:
        return spark_session()
    except SparkUnavailable as exc:
        fail(str(exc))


@spark_app.command("build")
def spark_build(
    skip_tests: Annotated[
        bool,
        typer.Option(
            "--skip-tests", help="Build the models and seeds only (each dbt test is a Spark job: most of the time)."
        ),
    ] = False,
) -> None:
    """Export the tables the dbt project reads (raw, ops, model outputs) from $MOS_HOME's DuckDB warehouse to
    parquet, register them on Spark, and build every model, seed and test with `--target spark` (catalog and tables
    under $MOS_HOME/spark). Exit code 1 when a node failed. `mos run --engine spark` runs the whole project on
    Spark instead (docs/SPARK.md)."""
    settings = configure_environment()
    if not settings.warehouse_path.exists():
        fail(f"{settings.warehouse_path} does not exist: `mos run` first (ingestion writes the raw layer there)")
    from mos_pipelines.spark.build import build_on_spark, relation_ids
    from mos_pipelines.transform.project import ensure_manifest

    _spark_or_fail()
    manifest = ensure_manifest()
    outcome = build_on_spark(
        settings,
        manifest,
        log=lambda line: console.print(line, markup=False),
        only=relation_ids(manifest) if skip_tests else None,
    )
    for failure in outcome.failures:
        err_console.print(f"[bold red]failed:[/] {failure}", soft_wrap=True)
    console.print(
        f"Spark build: {outcome.nodes_built} dbt nodes in {outcome.stages} stages, {len(outcome.python_runs)} Python "
        f"models, {len(outcome.skipped)} not built on Spark, {len(outcome.failures)} failed; "
        f"{outcome.seconds:.0f} s",
        soft_wrap=True,
    )
    if outcome.failures:
        raise typer.Exit(1)


@spark_app.command("compare")
def spark_compare(
    against: Annotated[
        Path | None,
        typer.Option(
            help="Another MOS_HOME built from the same landing files with the other engine: compare every table of "
            "every schema of the two warehouses (`mos run --engine spark` here, `mos run` there), run stamps left "
            "out by name."
        ),
    ] = None,
) -> None:
    """Compare every table of marts and activation on Spark (`mos spark build`) with the DuckDB warehouse: rows,
    keys, numbers within 1e-9 relative, everything else exactly. Exit code 1 on any difference."""
    settings = configure_environment()
    from mos_pipelines.settings import Settings
    from mos_pipelines.spark.build import not_built_relations
    from mos_pipelines.spark.compare import COMPARED_SCHEMAS, compare_marts, compare_warehouses
    from mos_pipelines.transform.project import ensure_manifest

    manifest = ensure_manifest()
    if against is not None:
        other = Settings(mos_home=against.expanduser().resolve()).warehouse_path
        if not other.exists():
            fail(f"no warehouse at {other}: give the MOS_HOME of a build of the same landing files")
        results = compare_warehouses(other, settings.warehouse_path, manifest, COMPARED_SCHEMAS)
    else:
        spark = _spark_or_fail()
        results = compare_marts(settings.warehouse_path, spark, manifest, not_built=not_built_relations(manifest))
    for result in results:
        name = f"{result.schema}.{result.table}"
        if result.skipped:
            console.print(f"[yellow]skipped[/] {name}: {result.skipped}", soft_wrap=True)
        elif result.equal:
            console.print(f"[green]equal[/]   {name} ({result.rows:,} rows)", soft_wrap=True)
        else:
            for difference in result.differences:
                console.print(f"[bold red]differs[/] {name}: {difference}", soft_wrap=True, markup=True)
    differing = [r for r in results if r.differences]
    console.print(f"{len(results) - len(differing)} of {len(results)} tables equal or skipped with a reason")
    if differing:
        raise typer.Exit(1)


@app.command()
def lint(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Folders or files of dbt_project/ (default: models tests).")
    ] = None,
) -> None:
    """Lint the dbt SQL with sqlfluff (dbt templater and the configuration's vars); exit code 1 on violations."""
    settings = configure_environment()
    from mos_pipelines.configuration import ConfigError
    from mos_pipelines.transform.lint import lint as lint_sql

    settings.mos_home.mkdir(parents=True, exist_ok=True)  # the dbt templater opens the warehouse
    try:
        violations, linted = lint_sql(paths or ["models", "tests"])
    except ConfigError as exc:
        fail(str(exc))
    for violation in violations:
        console.print(str(violation), markup=False, soft_wrap=True, highlight=False)
    files = len({v.file for v in violations})
    console.print(
        f"{len(violations)} violation(s) in {files} of {linted} file(s)"
        if violations
        else f"{linted} SQL file(s) passed sqlfluff."
    )
    if violations:
        raise typer.Exit(1)


@app.command()
def dev(
    host: Annotated[str, typer.Option(help="Interface to serve the UI on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the UI.")] = 3000,
) -> None:
    """Start the Dagster UI and daemon over the same warehouse and run history as the CLI."""
    configure_environment()
    from mos_pipelines.runner import prepare_manifest

    if parse_error := prepare_manifest():  # the UI still starts: the transform domain shows the error
        err_console.print(f"[bold red]dbt parse failed:[/] {parse_error}", soft_wrap=True)
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or shutil.which("dagster")
    if dagster is None:
        fail("The `dagster` command is not installed in this environment (run `make install`).")
    workspace = PROJECT_ROOT / "workspace.yaml"
    console.print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={os.environ['DAGSTER_HOME']})")
    os.chdir(PROJECT_ROOT)
    os.execv(dagster, [dagster, "dev", "-w", str(workspace), "-h", host, "-p", str(port)])


from mos_pipelines.crm.cli import crm_app  # noqa: E402 (the CRM's commands live in their own module)

app.add_typer(crm_app, name="crm")

from mos_pipelines.web.cli import serve  # noqa: E402 (the web app's command lives with it)

app.command("serve")(serve)

# The assistant (mos_pipelines/assistant/cli.py): `mos ask`, `mos mcp`.
from mos_pipelines.assistant.cli import ask_command, mcp_command  # noqa: E402

app.command("ask")(ask_command)
app.command("mcp")(mcp_command)

if __name__ == "__main__":
    app()
