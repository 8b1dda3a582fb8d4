"""Which assets of the full build must run now (``mos_pipelines.changes``), read from the Dagster instance and the warehouse.

The daily schedule and ``mos run`` call ``plan_build``: it computes every fingerprint (``FINGERPRINTS``), reads each
asset's latest materialization (its run's ``mos/fp/*`` tags, its code version and the upstream materializations it
read) and the warehouse's tables, and returns the plan; the run is launched with ``plan.tags()`` so that the next plan
knows what this one consumed. ``mos run --full-refresh`` (and ``--select``) run what they are asked and still record
the fingerprints.

An asset opts in to its own outside input by naming a fingerprint (``register``): a function of the settings that
returns a short deterministic string which changes when, and only when, that input changes. The landing folder of
each ingestion asset, the dbt project, the configuration and code, and the CRM store's erasure requests are
built in; an executable asset that names nothing reads the ``python`` fingerprint (configuration + code). An asset
whose kinds include ``duckdb`` writes the warehouse table its key names (``[schema, table]``): when that table is
missing, it runs. An asset that states its own data version (``MaterializeResult(data_version=...)``, as ingestion
does with the files it loaded) lets a run that changed nothing leave its children alone at the next plan.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping

import dagster as dg
import duckdb
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from mos_pipelines import changes, warehouse
from mos_pipelines.ingestion.contracts import SOURCES
from mos_pipelines.settings import DBT_PROJECT_DIR, PROJECT_ROOT, Settings, get_settings

Fingerprint = Callable[[Settings], str]
SKIPPED_METADATA = "skipped"
INPUT_VERSION_TAG = "dagster/input_data_version/"
# Assets that only sweep what their parents bring: running because a parent runs changes nothing for their children.
PASSIVE = {dg.AssetKey(["ops", "erasure_identifiers"])}


# Configuration that changes how fast a build runs, never what it computes: not an input of any asset.
ENGINE_ONLY_DOMAINS = ("warehouse",)


def _config(settings: Settings) -> str:
    from mos_pipelines.configuration.registry import CONFIG_DIR, DOMAINS

    domains = [d for d in DOMAINS.values() if d.name not in ENGINE_ONLY_DOMAINS]
    engine_files = {DOMAINS[name].file for name in ENGINE_ONLY_DOMAINS}
    files = [p for p in sorted(CONFIG_DIR.iterdir()) if p not in engine_files]
    return changes.files_fingerprint([*files, *changes.env_files(d.env for d in domains)])


def _python(settings: Settings) -> str:
    code = changes.files_fingerprint([PROJECT_ROOT / "mos_pipelines"], (".py",))
    return changes.value_fingerprint(_config(settings), code)


def _dbt(settings: Settings) -> str:
    from mos_pipelines.configuration.dbt import vars_json

    try:
        variables = vars_json(lenient=True)
    except Exception as exc:  # a configuration error: the dbt step will say it; the plan runs the dbt models
        variables = f"error: {exc}"
    files = [DBT_PROJECT_DIR / "macros", DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    # The engine the dbt steps build on is an input of every dbt model: the first run on Spark rebuilds them there
    # (a Spark step reads its parents from Spark), and so does the first back on DuckDB. Named only when it is not
    # DuckDB, so a DuckDB warehouse's fingerprints are the ones it always had.
    try:
        engine = warehouse.engine()
    except Exception as exc:  # a bad MOS_ENGINE or config/warehouse.yaml: the run says what (`mos run`), not the plan
        engine = f"error: {exc}"
    on = [] if engine == "duckdb" else [f"engine={engine}"]
    return changes.value_fingerprint(variables, changes.files_fingerprint(files), *on)


def _erasure_requests(settings: Settings) -> str:
    """The CRM store's erasure requests (ids only: marking one applied is not a change)."""
    from mos_pipelines.defs.crm.erasure import _requests

    return changes.value_fingerprint(*sorted(r.request_id for r in _requests(settings)))


def _landing(source: str) -> Fingerprint:
    return lambda settings: changes.landing_fingerprint(settings.landing_dir / source)


FINGERPRINTS: dict[str, Fingerprint] = {
    "python": _python,
    "dbt": _dbt,
    "erasure_requests": _erasure_requests,
    **{f"landing.{name}": _landing(name) for name in SOURCES},
}
RAW_SOURCES = {dg.AssetKey(["raw", s.raw_table]): f"landing.{name}" for name, s in SOURCES.items()}
INPUTS: dict[dg.AssetKey, tuple[str, ...]] = {
    dg.AssetKey(["ops", "erasure_identifiers"]): ("erasure_requests",),  # its code: `mos run --full-refresh`
    dg.AssetKey(["ops", "erasure_log"]): ("erasure_requests", "python"),
}


def register(
    key: dg.AssetKey, name: str, fingerprint: Fingerprint, with_code: bool = True, passive: bool = False
) -> None:
    """The hook for an asset with an outside input (a store it copies, an API it reads): ``fingerprint`` names what
    it reads now; the asset runs when that changes (and, ``with_code``, when the configuration or code does).
    ``passive``: its upstream assets only order it (it runs after them) — when it runs only because one of them runs,
    its children do not run for it (give it a data version of what it wrote, so the next plan can tell)."""
    FINGERPRINTS[name] = fingerprint
    INPUTS[key] = (name, "python") if with_code else (name,)
    if passive:
        PASSIVE.add(key)


def inputs_of(key: dg.AssetKey, node) -> tuple[str, ...]:
    if key in INPUTS:
        return INPUTS[key]
    if key in RAW_SOURCES:
        return (RAW_SOURCES[key],)  # the loader's code does not reload loaded files: only new files count
    if "dbt" in node.kinds:
        return ("dbt",)
    return ("python",)


def build_keys(asset_graph) -> set[dg.AssetKey]:
    from mos_pipelines.defs.schedules import FULL_BUILD_SELECTION

    return FULL_BUILD_SELECTION.resolve(asset_graph) & asset_graph.materializable_asset_keys


def current_fingerprints(settings: Settings, names: Iterable[str] | None = None) -> dict[str, str]:
    return {name: FINGERPRINTS[name](settings) for name in sorted(names or FINGERPRINTS)}


def _last(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> dict[str, changes.Last | None]:
    records = {
        r.asset_entry.asset_key: r.asset_entry.last_materialization_record for r in instance.get_asset_records(keys)
    }
    run_tags: dict[str, dict[str, str]] = {}
    out: dict[str, changes.Last | None] = {}
    for key in keys:
        record = records.get(key)
        if record is None:
            out[key.to_user_string()] = None
            continue
        run_id = record.run_id
        if run_id not in run_tags:
            run = instance.get_run_by_id(run_id)
            run_tags[run_id] = changes.fingerprints_of_run(run.tags) if run else {}
        materialization = record.asset_materialization
        tags = (materialization.tags if materialization else None) or {}
        parents = {k.removeprefix(INPUT_VERSION_TAG): v for k, v in tags.items() if k.startswith(INPUT_VERSION_TAG)}
        out[key.to_user_string()] = changes.Last(
            run_id=run_id,
            storage_id=record.storage_id,
            code_version=tags.get("dagster/code_version"),
            data_version=tags.get("dagster/data_version"),
            fingerprints=run_tags[run_id],
            parents=parents,
        )
    return out


def _missing_tables(settings: Settings, keys: Iterable[dg.AssetKey]) -> set[str]:
    """Tables of ``keys`` absent from the warehouse (every one when there is no warehouse; none when it cannot be
    read now, e.g. a run holds its lock: the plan then trusts the instance)."""
    keys = [k for k in keys if len(k.path) == 2]
    if not settings.warehouse_path.exists():
        return {k.to_user_string() for k in keys}
    try:
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    except duckdb.Error:
        return set()
    with contextlib.closing(con):
        present = {
            (s, t) for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        }
    return {k.to_user_string() for k in keys if tuple(k.path) not in present}


def _failed_gates(instance: dg.DagsterInstance, asset_graph, keys: set[dg.AssetKey]) -> dict[str, str]:
    checks = [c for c in asset_graph.asset_check_keys if c.asset_key in keys and asset_graph.get_check_spec(c).blocking]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks) if checks else {}
    failed: dict[str, str] = {}
    for check_key, record in sorted(latest.items(), key=lambda kv: (kv[0].asset_key.to_user_string(), kv[0].name)):
        if record is not None and record.status == AssetCheckExecutionRecordStatus.FAILED:
            failed.setdefault(check_key.asset_key.to_user_string(), f"{check_key.name} (run {record.run_id[:8]})")
    return failed


def plan_build(instance: dg.DagsterInstance, asset_graph, settings: Settings | None = None) -> changes.Plan:
    """The plan of the full build now: what runs and why, what is unchanged since which run."""
    settings = settings or get_settings()
    keys = sorted(build_keys(asset_graph), key=lambda k: k.to_user_string())
    in_build = set(keys)
    nodes = {}
    for key in keys:
        node = asset_graph.get(key)
        nodes[key.to_user_string()] = changes.Node(
            parents=tuple(sorted(p.to_user_string() for p in node.parent_keys if p in in_build)),
            inputs=inputs_of(key, node),
            code_version=node.code_version,
            propagates=key not in PASSIVE,
        )
    checked = [k for k in keys if "duckdb" in asset_graph.get(k).kinds]  # [schema, table] of the warehouse
    return changes.plan(
        nodes,
        _last(instance, keys),
        current_fingerprints(settings),
        missing=_missing_tables(settings, checked),
        failed_gates=_failed_gates(instance, asset_graph, in_build),
    )


def selection(plan: changes.Plan) -> list[dg.AssetKey]:
    return [dg.AssetKey.from_user_string(k) for k in sorted(plan.run)]


def report_unchanged(instance: dg.DagsterInstance, asset_graph, plan: changes.Plan) -> None:
    """An observation on each Python asset left out of the build, whose metadata says why (visible on the asset's
    page in the UI): dbt models and ingestion assets are many and say nothing more than the plan's summary."""
    reasons: dict[str, tuple[str, str | None]] = {
        name: (f"inputs unchanged since run {run_id}", run_id) for name, run_id in plan.unchanged.items()
    }
    reasons |= {name: (f"not run: {why}", None) for name, why in plan.blocked.items()}
    for name, (reason, run_id) in sorted(reasons.items()):
        key = dg.AssetKey.from_user_string(name)
        if key in RAW_SOURCES or "dbt" in asset_graph.get(key).kinds:
            continue
        metadata = {SKIPPED_METADATA: reason, **({"materialized_by_run": run_id} if run_id else {})}
        instance.report_runless_asset_event(dg.AssetObservation(asset_key=key, metadata=metadata))


def describe(plan: changes.Plan, limit: int = 12) -> Mapping[str, str]:
    """The first ``limit`` assets that run, each with its reason (for logs and the command line)."""
    return dict(sorted(plan.run.items())[:limit])
