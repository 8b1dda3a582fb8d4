"""Materialize assets from the command line, in process, recorded in the Dagster instance.

Runs go through the same definitions and instance (``$DAGSTER_HOME``) as the UI, so they appear in
its run history. Progress is read from the instance's event log while the run executes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from rich.console import Console

from mos_pipelines import changes
from mos_pipelines.progress import make_progress
from mos_pipelines.runlog import captured_output
from mos_pipelines.settings import FULL_REFRESH_TAG

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
FULL_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


class RunSelectionError(ValueError):
    """The --select expression is invalid or matches no asset."""


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    materialized: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    checks_warned: int = 0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # warning checks that did not pass (nothing was blocked)
    not_loaded: list[str] = field(default_factory=list)  # domains whose definitions did not load (and why)
    log_file: Path | None = None
    released: list[str] = field(default_factory=list)  # earlier runs found killed: marked failed, pool slot freed
    plan: changes.Plan | None = None  # what changed (a run without --select / --full-refresh); None: not planned
    launched: bool = True  # False: nothing changed, no run was launched (``run_id`` is empty)


def prepare_manifest() -> str | None:
    """Bring the dbt manifest up to date (command time, never import time); dbt's error when it cannot."""
    from mos_pipelines.transform.project import DbtParseError, ensure_manifest

    try:
        ensure_manifest()
    except DbtParseError as exc:
        return str(exc)
    return None


def load_definitions(prepare: bool = True) -> dg.Definitions:
    """The project's definitions, as the UI loads them (the dbt manifest prepared first with ``prepare``)."""
    from mos_pipelines.definitions import defs

    if prepare:
        prepare_manifest()
    return defs() if callable(defs) else defs  # @dg.definitions gives a lazy loader


def load_errors(definitions: dg.Definitions, parse_error: str | None = None) -> list[str]:
    """One line per domain that did not load: ``<domain>: <error naming the file and key>`` (dbt's own
    message for the transform domain when the parse failed)."""
    from mos_pipelines.defs import load_errors as domain_errors

    return [
        f"{e.domain}: {parse_error if e.domain == 'transform' and parse_error else e.message}"
        for e in domain_errors(definitions)
    ]


def resolve_selection(definitions: dg.Definitions, select: str | None) -> list[dg.AssetKey]:
    """Asset keys for a Dagster selection string within the full build; all of it when None.

    Channel deliveries are not part of the full build (their sensors launch them behind the quality
    gates; by hand: `mos activation run`)."""
    from mos_pipelines.defs.schedules import FULL_BUILD_SELECTION

    graph = definitions.resolve_asset_graph()
    buildable = FULL_BUILD_SELECTION.resolve(graph) & graph.materializable_asset_keys
    if not select:
        return sorted(buildable)
    try:
        # with the other assets of a multi-asset that cannot be subset (the CRM store copy writes its four tables at once)
        keys = dg.AssetSelection.from_string(select).required_multi_asset_neighbors().resolve(graph)
    except Exception as exc:  # Dagster raises several types for a bad expression
        raise RunSelectionError(f"Invalid --select {select!r}: {exc}") from exc
    deliveries = sorted(k.to_user_string() for k in keys if k in graph.materializable_asset_keys and k not in buildable)
    selected = sorted(k for k in keys if k in buildable)
    if not selected:
        hint = (
            f" ({', '.join(deliveries)} are channel deliveries: run them with `mos activation run`)"
            if deliveries
            else ""
        )
        raise RunSelectionError(
            f"--select {select!r} matches no asset of the build{hint}. Try 'group:raw' or 'key:raw/events'."
        )
    return selected


def _watch(instance: dg.DagsterInstance, run_id: str, total: int, console: Console, done: threading.Event) -> None:
    """One progress bar: assets materialized of those selected, the step running now, the time elapsed."""
    with make_progress(console) as bars:
        task = bars.add_task("starting", total=total)
        cursor = None
        count = 0
        running: list[str] = []
        while True:
            finished = done.wait(0.5)
            conn = instance.get_records_for_run(
                run_id,
                cursor=cursor,
                of_type={
                    dg.DagsterEventType.ASSET_MATERIALIZATION,
                    dg.DagsterEventType.STEP_START,
                    dg.DagsterEventType.STEP_SUCCESS,
                    dg.DagsterEventType.STEP_FAILURE,
                    dg.DagsterEventType.STEP_SKIPPED,
                },
            )
            cursor = conn.cursor if conn.records else cursor
            for record in conn.records:
                event = record.event_log_entry.dagster_event
                if event is None:
                    continue
                if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                    count += 1
                elif event.event_type == dg.DagsterEventType.STEP_START and event.step_key:
                    running.append(event.step_key)
                elif event.step_key in running:
                    running.remove(event.step_key)
            label = f"step {running[-1]}" if running else "waiting"
            bars.update(task, completed=count, description=label)
            if finished:
                bars.update(task, completed=count, description="done")
                return


PID_TAG = "mos/pid"
HOST_TAG = "mos/host"


def launch_tags() -> dict[str, str]:
    """Tags of a run launched from this process (`mos run`, `mos activation run`, `mos blueprint run|resume`): who
    runs it, so a later launch can tell a killed run from a live one."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def release_killed_runs(instance: dg.DagsterInstance, job_name: str | None = None) -> tuple[list[str], list[str]]:
    """Runs still marked in progress whose launching process on this machine is gone (killed, out of memory):
    marked failed and their claims on the warehouse pool freed — otherwise the next run waits for that slot
    forever. Only runs carrying ``launch_tags`` (launched by `mos`); the daemon's and the UI's are left to Dagster.
    Returns (released run ids, run ids still alive in another process)."""
    released, alive = [], []
    in_progress = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED]
    runs = instance.get_runs(dg.RunsFilter(job_name=job_name, statuses=in_progress))
    for run in runs:
        pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if pid is None or host != socket.gethostname() or int(pid) == os.getpid():
            continue
        if _alive(int(pid)):
            alive.append(run.run_id)
            continue
        instance.report_run_failed(run, f"its process ({pid}) is gone: killed; released by the next launch")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released, alive


def run_assets(
    select: str | None,
    console: Console | None = None,
    log_file: Path | None = None,
    full_refresh: bool = False,
) -> RunOutcome:
    """Materialize through the ``full_build`` job in this process: what changed (as the daily schedule does:
    ``mos_pipelines.defs.changes``), or the ``select``ion as asked, or everything with ``full_refresh``. Nothing
    changed: no run is launched (``launched`` False) and the Python assets left out say why on their page.

    With ``log_file``, everything the run prints (dbt's lines, Dagster's event log at INFO, warnings) goes
    to that file and ``console`` shows only the progress display."""
    from mos_pipelines.defs import changes as build_changes
    from mos_pipelines.settings import get_settings

    parse_error = prepare_manifest()
    definitions = load_definitions(prepare=False)
    not_loaded = load_errors(definitions, parse_error)
    keys = resolve_selection(definitions, select)
    job = definitions.resolve_job_def("full_build")
    instance = dg.DagsterInstance.get()
    released, _ = release_killed_runs(instance)
    plan = None
    if select or full_refresh:
        fingerprints = build_changes.current_fingerprints(get_settings())
        tags = changes.Plan(fingerprints=fingerprints).tags()
    else:
        graph = definitions.resolve_asset_graph()
        plan = build_changes.plan_build(instance, graph)
        tags = plan.tags()
        keys = build_changes.selection(plan)
        build_changes.report_unchanged(instance, graph, plan)
        if plan.nothing_to_do:
            return RunOutcome(
                run_id="", success=True, not_loaded=not_loaded, released=released, plan=plan, launched=False
            )
    run_id = str(uuid.uuid4())
    done = threading.Event()
    watcher = None
    capture = captured_output(log_file) if log_file else contextlib.nullcontext(None)
    with capture as stream:
        if console is not None:
            shown = Console(file=stream, force_terminal=console.is_terminal, width=console.width) if stream else console
            watcher = threading.Thread(target=_watch, args=(instance, run_id, len(keys), shown, done), daemon=True)
            watcher.start()
        try:
            result = job.execute_in_process(
                instance=instance,
                asset_selection=keys,
                run_id=run_id,
                raise_on_error=False,
                run_config=FULL_LOGS if log_file else QUIET_LOGS,
                tags={
                    "mos/launched_by": "cli",
                    **launch_tags(),
                    **tags,
                    **({FULL_REFRESH_TAG: "true"} if full_refresh else {}),
                },
            )
        finally:
            done.set()
            if watcher is not None:
                watcher.join()
    outcome = RunOutcome(
        run_id=run_id, success=result.success, log_file=log_file, not_loaded=not_loaded, released=released, plan=plan
    )
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            outcome.materialized += 1
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            name = f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            if evaluation.passed:
                outcome.checks_passed += 1
            elif evaluation.severity == dg.AssetCheckSeverity.WARN:
                outcome.checks_warned += 1
                outcome.warnings.append(name)
            else:
                outcome.checks_failed += 1
                outcome.failures.append(name)
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            cause = error.cause if error and error.cause else error
            message = cause.message.strip() if cause else "unknown error"
            outcome.failures.append(f"step {event.step_key}: {message.splitlines()[0] if message else message}")
    return outcome


@dataclass
class ActivationOutcome:
    destination: str
    launched: bool
    reason: str
    run_id: str | None = None
    success: bool = True
    metadata: dict = field(default_factory=dict)


def run_activation(destinations: list[str] | None = None, dry_run: bool = False) -> list[ActivationOutcome]:
    """Deliver destinations now, in process, where the sensor's gate decision allows it.

    The same decision as the sensors (``activation.gating.decide``) except that a materialization
    delivered before may be delivered again (the ledger sends nothing that did not change)."""
    from mos_pipelines.configuration import load_activation
    from mos_pipelines.defs.activation.gating import decide, delivery_key
    from mos_pipelines.defs.activation.jobs import job_name

    config = load_activation()
    names = destinations or list(config.destinations)
    for name in names:
        config.destination(name)  # an unknown name fails before anything runs
    definitions = load_definitions()
    graph = definitions.resolve_asset_graph()
    instance = dg.DagsterInstance.get()
    release_killed_runs(instance)
    outcomes = []
    for name in names:
        decision = decide(instance, graph, config, name, None, require_new=False)
        if not decision.launch:
            outcomes.append(ActivationOutcome(name, False, decision.reason))
            continue
        key = delivery_key(name)
        run_config = {"ops": {key.to_python_identifier(): {"config": {"dry_run": dry_run}}}, **QUIET_LOGS}
        result = definitions.resolve_job_def(job_name(name)).execute_in_process(
            instance=instance,
            run_config=run_config,
            raise_on_error=False,
            tags={"mos/launched_by": "cli", "mos/destination": name, **launch_tags()},
        )
        metadata = {}
        for event in result.all_events:
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                metadata = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
        failure = next(
            (
                e.step_failure_data.error.message.strip()
                for e in result.all_events
                if e.event_type == dg.DagsterEventType.STEP_FAILURE and e.step_failure_data.error
            ),
            None,
        )
        outcomes.append(
            ActivationOutcome(name, True, failure or decision.reason, result.run_id, result.success, metadata)
        )
    return outcomes
