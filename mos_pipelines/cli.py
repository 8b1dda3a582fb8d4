"""The ``mos`` command: generate a simulated world, build the warehouse, open the Dagster UI."""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from mos_pipelines.settings import PROJECT_ROOT, configure_environment

app = typer.Typer(
    name="mos",
    help="MOS Pipelines: a warehouse-native marketing OS (Dagster + dbt + DuckDB). Data lives in $MOS_HOME (default ./.mos).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print an actionable error and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def generate(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives byte-identical files.")] = 7,
    people: Annotated[int, typer.Option(min=1, help="Number of people in the world.")] = 1000,
    days: Annotated[int, typer.Option(min=1, help="Days of activity to generate.")] = 30,
    scenario: Annotated[Optional[Path], typer.Option(help="Scenario YAML with planted effects (default: bundled).")] = None,
    start_date: Annotated[Optional[str], typer.Option(help="First day, YYYY-MM-DD (default 2026-01-01).")] = None,
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
        Optional[str],
        typer.Option(help="Dagster asset selection, e.g. 'group:raw', 'key:raw/events+'. Default: everything."),
    ] = None,
) -> None:
    """Materialize assets through Dagster against $MOS_HOME (runs appear in the Dagster UI)."""
    settings = configure_environment()
    from mos_pipelines import warehouse
    from mos_pipelines.runner import RunSelectionError, run_assets

    if not settings.landing_dir.is_dir():
        fail(
            f"No landing folder at {settings.landing_dir}. Run `mos generate` for a simulated world, "
            "or put your files under landing/<source>/ (see README: bring your own data)."
        )
    try:  # fail early, with a clear message, if the warehouse is locked or unreadable
        warehouse.connect(settings.warehouse_path).close()
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    try:
        outcome = run_assets(select, console=console)
    except RunSelectionError as exc:
        fail(str(exc))
    if not outcome.success:
        for failure in outcome.failures:
            err_console.print(f"[bold red]failed:[/] {failure}", soft_wrap=True)
        fail(f"Run {outcome.run_id} failed; details in the Dagster UI (`mos dev`).", code=1)
    console.print(f"Run {outcome.run_id} succeeded: {outcome.materialized} assets materialized, "
                  f"{outcome.checks_passed} checks passed, {outcome.checks_failed} failed.")
    summary()


@app.command()
def summary() -> None:
    """Print what the warehouse holds: rows per layer, quarantined rows, ingested files."""
    settings = configure_environment()
    from mos_pipelines import warehouse
    from mos_pipelines.summary import warehouse_summary

    try:
        con = warehouse.connect(settings.warehouse_path, read_only=True)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    try:
        found = warehouse_summary(con, truth_file=settings.truth_dir / "identity_truth.csv")
    finally:
        con.close()
    console.print(f"Warehouse: {settings.warehouse_path}", soft_wrap=True)
    layers = Table(title="Rows per layer")
    for col, justify in (("schema", "left"), ("tables", "right"), ("rows", "right")):
        layers.add_column(col, justify=justify)
    for schema, (tables, rows) in found.layers.items():
        layers.add_row(schema, str(tables), f"{rows:,}")
    console.print(layers)
    quarantine = Table(title="Ingestion (landing → raw)")
    for col in ("source", "files", "unreadable", "rows loaded", "quarantined"):
        quarantine.add_column(col, justify="left" if col == "source" else "right")
    for row in found.ingestion:
        quarantine.add_row(row.source, str(row.files), str(row.unreadable), f"{row.rows_loaded:,}", f"{row.rows_quarantined:,}")
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
            gates.add_row(g.check_name, g.asset, "[green]pass[/]" if g.passed else "[bold red]FAIL[/]", observed,
                          g.threshold)
        console.print(gates)
    console.print("Dagster UI: [bold]make dev[/] (or `mos dev`), then open http://127.0.0.1:3000")


identity_app = typer.Typer(help="Identity resolution: evaluate the customer map against a truth file.")
app.add_typer(identity_app, name="identity")


@identity_app.command("evaluate")
def identity_evaluate(
    truth: Annotated[Path, typer.Option(help="Truth CSV with columns source, source_record_id, true_entity_id.")],
    crm_only: Annotated[bool, typer.Option(help="Score only CRM records (the deduplication figure).")] = False,
) -> None:
    """Pairwise and cluster-level precision/recall/F1, largest clusters and over-merges vs the truth."""
    settings = configure_environment()
    from mos_pipelines import warehouse
    from mos_pipelines.identity.evaluation import TruthFileError
    from mos_pipelines.identity.truth_eval import evaluate_identity

    if not truth.is_file():
        fail(f"Truth file not found: {truth}")
    try:
        con = warehouse.connect(settings.warehouse_path, read_only=True)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    try:
        result = evaluate_identity(con, truth, crm_only=crm_only)
    except TruthFileError as exc:
        fail(str(exc))
    except Exception as exc:  # e.g. the identity models were never built
        fail(f"Cannot read marts.customer_identity_map in {settings.warehouse_path}: {exc}. Run `mos run` first.")
    finally:
        con.close()
    console.print(result.to_markdown(), soft_wrap=True)


lookalike_app = typer.Typer(help="Lookalike audiences: score any CSV with the same model the warehouse uses.")
app.add_typer(lookalike_app, name="lookalike")


@lookalike_app.command("score")
def lookalike_score(
    input: Annotated[Path, typer.Option("--input", help="CSV with one row per person: features, an id and a seed flag.")],
    id_column: Annotated[str, typer.Option(help="Column that identifies a row (excluded from the features).")],
    seed_column: Annotated[str, typer.Option(help="Column marking seed members: 1/0, true/false or yes/no.")],
    out: Annotated[Path, typer.Option(help="Where to write the scores of the non-seed rows (CSV).")],
    model: Annotated[str, typer.Option(help="gradient_boosting (default) or linear (transparent).")] = "gradient_boosting",
    min_seed_size: Annotated[int, typer.Option(min=1, help="Refuse seeds smaller than this.")] = 100,
    random_state: Annotated[int, typer.Option(help="Seed of every random choice (same input, same output).")] = 42,
) -> None:
    """Fit seed vs the other rows, print the held-out evaluation and write id, score, percentile, tier."""
    from mos_pipelines.lookalike.csv_scoring import score_csv
    from mos_pipelines.lookalike.model import LookalikeError, ModelSettings

    try:
        settings = ModelSettings(kind=model, min_seed_size=min_seed_size, random_state=random_state)  # type: ignore[arg-type]
        with console.status(f"Fitting a {model} lookalike model on {input} ..."):
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
        + (f"; left out: {', '.join(f'{c} ({r})' for c, r in result.spec.dropped.items())}" if result.spec.dropped else "")
    )
    table = Table(title=f"Held-out seed vs {ev.eval_population} unseen population rows (model {result.fit.model_version})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("AUC", f"{ev.auc:.3f}")
    table.add_row("average precision", f"{ev.average_precision:.3f}")
    for tier in sorted(ev.recall_at):
        table.add_row(f"recall / lift at top {tier} %", f"{ev.recall_at[tier]:.3f} / {ev.lift_at[tier]:.2f}x")
    console.print(table)
    top = ", ".join(f"{k} {v:.3f}" for k, v in list(result.fit.importances.items())[:5])
    console.print(f"Most important features (AUC drop when shuffled): {top}")
    console.print(f"Wrote {len(result.scores)} scored rows to {out}")

activation_app = typer.Typer(help="Channel activation: deliver sync models behind the quality gates, inspect the ledger.")
app.add_typer(activation_app, name="activation")


@activation_app.command("run")
def activation_run(
    destination: Annotated[Optional[list[str]], typer.Option(help="A destination of config/activation.yaml (repeat for several). Default: all.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Write what would be sent to $MOS_HOME/activation/dry_run/ instead of sending.")] = False,
) -> None:
    """Deliver now, through Dagster, each destination whose sync model passed every blocking check upstream."""
    settings = configure_environment()
    from mos_pipelines.activation.config import ActivationConfigError
    from mos_pipelines.runner import run_activation

    if not settings.warehouse_path.exists():
        fail(f"No warehouse at {settings.warehouse_path}. Run `mos run` first.")
    try:
        outcomes = run_activation(destination, dry_run=dry_run)
    except ActivationConfigError as exc:
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
        table.add_row(o.destination, result, *(str(m.get(k, "")) for k in
                      ("dagster/row_count", "changes", "acknowledged", "dead_letter", "blocked_consent", "held_for_approval")))
    console.print(table)
    console.print("rows: in the sync model; acked: acknowledged by the destination; dead: dead letters; "
                  "no consent: not sent, consent not granted now; held: copy awaiting approval (`mos approvals list`)",
                  soft_wrap=True)
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
    from mos_pipelines import warehouse
    from mos_pipelines.activation import content, ledger

    try:
        con = warehouse.connect(settings.warehouse_path)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    try:
        ledger.ensure_tables(con)
        frame = ledger.summary(con)
        stuck = con.execute(
            "select destination, record_key, status, attempts, last_error from ops.activation_ledger "
            "where status in ('dead_letter', 'unknown', 'failed') order by destination, record_key limit 20").df()
        pending = content.list_approvals(con, "pending")
    finally:
        con.close()
    table = Table(title="Activation ledger")
    for col in ("destination", "status", "records", "held by the destination"):
        table.add_column(col, justify="left" if col in ("destination", "status") else "right")
    for row in frame.itertuples():
        table.add_row(row.destination, row.status, f"{row.records:,}", f"{row.present:,}")
    console.print(table)
    for row in stuck.itertuples():
        console.print(f"• {row.destination} {row.record_key}: {row.status} after {row.attempts} attempt(s): "
                      f"{row.last_error}", soft_wrap=True)
    if len(stuck):
        console.print("Send them again after checking: `mos activation requeue --destination NAME --status dead_letter`")
    console.print(f"{len(pending)} copy approval(s) pending (`mos approvals list`).")


@activation_app.command("requeue")
def activation_requeue(
    destination: Annotated[str, typer.Option(help="The destination.")],
    status: Annotated[list[str], typer.Option(help="dead_letter, unknown or failed (repeat for several).")] = ["dead_letter"],
) -> None:
    """Send stuck changes again with their idempotency key (after checking the destination)."""
    settings = configure_environment()
    from mos_pipelines import warehouse
    from mos_pipelines.activation import ledger

    try:
        con = warehouse.connect(settings.warehouse_path)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    try:
        ledger.ensure_tables(con)
        count = ledger.requeue(con, destination, tuple(status), ledger.utcnow())
    except ValueError as exc:
        fail(str(exc))
    finally:
        con.close()
    console.print(f"{count} change(s) of {destination} are pending again; the next delivery sends them.")


approvals_app = typer.Typer(help="Email copy that states a number, a price or a discount waits here for a person.")
app.add_typer(approvals_app, name="approvals")


def _approvals_connection():
    settings = configure_environment()
    from mos_pipelines import warehouse

    try:
        return warehouse.connect(settings.warehouse_path)
    except warehouse.WarehouseError as exc:
        fail(str(exc))


@approvals_app.command("list")
def approvals_list(
    status: Annotated[str, typer.Option(help="pending, approved, rejected or all.")] = "pending",
) -> None:
    """Copy waiting for (or given) a decision, with the claims that need one."""
    from mos_pipelines.activation import content

    if status not in ("pending", "approved", "rejected", "all"):
        fail(f"--status {status!r}: expected pending, approved, rejected or all")
    con = _approvals_connection()
    try:
        frame = content.list_approvals(con, None if status == "all" else status)
    finally:
        con.close()
    if frame.empty:
        console.print(f"No {'' if status == 'all' else status + ' '}approvals.")
        return
    for row in frame.itertuples():
        console.print(f"[bold]{row.approval_id}[/] {row.status}  {row.campaign_id}/{row.variant_id} "
                      f"({row.renderer})  claims: {', '.join(json.loads(row.claims))}", soft_wrap=True)
        console.print(f"  Subject: {row.subject}", soft_wrap=True, markup=False)
        for line in str(row.body).strip().splitlines():
            console.print(f"  | {line}", soft_wrap=True, markup=False)
        if row.decided_by:
            console.print(f"  decided by {row.decided_by} at {row.decided_at}: {row.note or ''}", soft_wrap=True)


def _decide(approval_id: str, decision: str, by: str, note: Optional[str]) -> None:
    from mos_pipelines.activation import content, ledger

    con = _approvals_connection()
    try:
        content.decide(con, approval_id, decision, by, note, ledger.utcnow())
    except content.ApprovalError as exc:
        fail(str(exc))
    finally:
        con.close()
    console.print(f"Approval {approval_id} {decision}. The next delivery "
                  f"{'sends' if decision == 'approved' else 'never sends'} this copy.")


@approvals_app.command("approve")
def approvals_approve(
    approval_id: Annotated[str, typer.Argument(help="The id shown by `mos approvals list`.")],
    by: Annotated[str, typer.Option(help="Who approves.")] = os.environ.get("USER", "unknown"),
    note: Annotated[Optional[str], typer.Option(help="Why (kept with the decision).")] = None,
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


@app.command()
def dev(
    host: Annotated[str, typer.Option(help="Interface to serve the UI on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the UI.")] = 3000,
) -> None:
    """Start the Dagster UI and daemon over the same warehouse and run history as the CLI."""
    configure_environment()
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or shutil.which("dagster")
    if dagster is None:
        fail("The `dagster` command is not installed in this environment (run `make install`).")
    workspace = PROJECT_ROOT / "workspace.yaml"
    console.print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={os.environ['DAGSTER_HOME']})")
    os.chdir(PROJECT_ROOT)
    os.execv(dagster, [dagster, "dev", "-w", str(workspace), "-h", host, "-p", str(port)])


if __name__ == "__main__":
    app()
