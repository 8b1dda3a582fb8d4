"""A build of the dbt project (all of it, or the nodes of one Dagster step) on Spark: the sources it reads exported
from DuckDB, then dbt (`--target spark`, in this process, so dbt-spark's session is this one) in stages around the
dbt Python models, which run between the stages (mos_pipelines.spark.python_models); then, for `mos run` on Spark,
each relation built is linked back into the DuckDB warehouse as a view over Spark's files
(mos_pipelines.spark.views). Always a full refresh: parquet tables have no delete or merge
(macros/cross_db/delete_insert_strategy.sql)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mos_pipelines.settings import DBT_PROJECT_DIR, Settings
from mos_pipelines.spark.python_models import PythonModelRun, run_python_model
from mos_pipelines.spark.raw_layer import ExportedTable, export_sources, source_tables
from mos_pipelines.spark.session import TARGET, duckdb_target, spark_session
from mos_pipelines.spark.views import is_view, link_relations, snapshot_view, table_location

BUILT_TYPES = ("model", "seed", "snapshot", "test", "unit_test")
# Not built on Spark, each with the reason a build reports.
SKIPPED_ON_SPARK = {
    "snapshot": "dbt-spark snapshots need Delta, Iceberg or Hudi tables (parquet here: the Delta jars are not "
    "installable offline)",
}


@dataclass
class Stage:
    """dbt nodes built together, after the Python models of the stage ran."""

    number: int
    python_models: list[str] = field(default_factory=list)  # unique ids
    selectors: list[str] = field(default_factory=list)  # dbt node selectors (names)
    ids: list[str] = field(default_factory=list)  # the unique id of each selector


# dbt statuses of a node that did what it should; `warn` is a test that failed at warn severity (reported, not a
# failure of the build, as in `dbt build`).
PASSED = ("success", "pass", "warn")


@dataclass(frozen=True)
class NodeResult:
    """One node's outcome: dbt's status (success, pass, warn, fail, error, skipped) and message; a Python model's
    success or error."""

    unique_id: str
    status: str
    message: str = ""
    failures: int | None = None  # a test's failing rows
    seconds: float = 0.0
    python: bool = False  # a dbt Python model, run beside dbt
    engine: str = "spark"  # "duckdb": a node Spark cannot build, built on DuckDB from Spark's tables (`link`)

    @property
    def passed(self) -> bool:
        return self.status in PASSED


@dataclass
class SparkBuild:
    exported: list[ExportedTable]
    python_runs: list[PythonModelRun]
    stages: int
    skipped: dict[str, str]  # unique id -> reason
    results: list[NodeResult]  # every node run, dbt's and the Python models', in build order
    errors: list[str]  # a dbt invocation that ended in an exception
    seconds: float
    linked: list[str] = field(default_factory=list)  # DuckDB views made over what was built (schema.table)
    on_duckdb: dict[str, str] = field(default_factory=dict)  # unique id -> why Spark could not (built on DuckDB)

    @property
    def failures(self) -> list[str]:
        """Nodes that did not pass and invocations that failed, "unique_id: status: message"."""
        failed = [f"{r.unique_id}: {r.status}: {r.message[:500]}" for r in self.results if not r.passed]
        return failed + self.errors

    @property
    def nodes_built(self) -> int:
        """dbt nodes run (the Python models not counted)."""
        return sum(1 for r in self.results if not r.python)

    @property
    def success(self) -> bool:
        return not self.failures


def relation_ids(manifest_path: Path) -> set[str]:
    """The unique ids of every model, seed and snapshot (a build without the tests)."""
    nodes = json.loads(manifest_path.read_text())["nodes"]
    return {u for u, n in nodes.items() if n["resource_type"] in ("model", "seed", "snapshot")}


def _selector(node: dict) -> str:
    """A selector naming exactly this node: its fully qualified name (unit tests: `unit_test:` prefix not needed)."""
    return ".".join(node["fqn"])


def stage_plan(manifest: dict, only: set[str] | None = None) -> tuple[list[Stage], dict[str, str]]:
    """Stages in build order and the nodes skipped on Spark (of the nodes ``only`` names, when given: one Dagster
    step). A dbt node's stage is the highest of its parents'; a Python model's is one more than its parents' highest
    (it runs before the dbt nodes of its stage, after the dbt nodes of the stage before). Tests land in the stage of
    their last parent, so every test runs once, after all its parents exist."""
    nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    stage_of: dict[str, int] = {}
    skipped: dict[str, str] = {}

    def stage(unique_id: str) -> int:
        if unique_id in stage_of:
            return stage_of[unique_id]
        node = nodes.get(unique_id)
        if node is None:  # a source, a metric, …
            return 0
        parents = [p for p in node.get("depends_on", {}).get("nodes", []) if p in nodes]
        depth = max((stage(p) for p in parents), default=0)
        if node["resource_type"] == "model" and node.get("language") == "python":
            depth += 1
        stage_of[unique_id] = depth
        return depth

    stages: dict[int, Stage] = {}
    for unique_id, node in sorted(nodes.items()):
        kind = node["resource_type"]
        if kind not in BUILT_TYPES or node.get("config", {}).get("enabled") is False:
            continue
        if only is not None and unique_id not in only:
            continue
        parents = node.get("depends_on", {}).get("nodes", [])
        reason = SKIPPED_ON_SPARK.get(kind) or next(
            (f"tests {p}, which is not built on Spark" for p in parents if p in skipped), None
        )
        if reason:
            skipped[unique_id] = reason
            continue
        number = stage(unique_id)
        entry = stages.setdefault(number, Stage(number))
        if kind == "model" and node.get("language") == "python":
            entry.python_models.append(unique_id)
        else:
            entry.selectors.append(_selector(node))
            entry.ids.append(unique_id)
    return [stages[n] for n in sorted(stages)], skipped


def build_on_spark(
    settings: Settings,
    manifest_path: Path,
    log: Callable[[str], None] = print,
    project_dir: Path = DBT_PROJECT_DIR,
    only: set[str] | None = None,
    dbt_args: Sequence[str] = (),
    link: bool = False,
    snapshot_views: AbstractSet[str] = frozenset(),
) -> SparkBuild:
    """Export the sources, then build every dbt node (or the nodes ``only`` names) on Spark stage by stage; dbt's
    failures are collected, not raised (the build goes on to the end, as `dbt build` does within one invocation).
    ``dbt_args`` go to every dbt invocation (`--vars`); with ``link``, every table built becomes a view in the
    DuckDB warehouse over Spark's files (what `mos run` on Spark does, so the Python assets read Spark's tables); a
    Spark view has no files, so its rows are written out only when it is in ``snapshot_views`` ("schema.table":
    something outside dbt reads it)."""
    from dbt.cli.main import dbtRunner

    from mos_pipelines.transform.project import dbt_command

    started = time.monotonic()
    root = settings.mos_home / "spark"
    manifest = json.loads(manifest_path.read_text())
    spark = spark_session(project_dir)
    sources = source_tables(manifest, read_by=only)
    exported = export_sources(settings.warehouse_path, spark, sources, root / "sources")
    log(
        f"sources: {sum(1 for t in exported if t.rows is not None)} tables exported to Spark "
        f"({sum(t.rows or 0 for t in exported):,} rows)"
    )
    stages, skipped = stage_plan(manifest, only)
    if only is not None and not any(u.startswith("unit_test.") for u in only):
        dbt_args = [*dbt_args, "--exclude", "resource_type:unit_test"]  # dbt runs a selected model's unit tests
    for unique_id, reason in sorted(skipped.items()):
        log(f"not built on Spark: {unique_id}: {reason}")
    runner = dbtRunner()
    python_runs: list[PythonModelRun] = []
    results: list[NodeResult] = []
    errors: list[str] = []
    upstream = Upstream(manifest)
    for stage in stages:
        for unique_id in sorted(stage.python_models):  # one stage's Python models never depend on each other
            if (cause := upstream.failed_before(unique_id)) is not None:
                results.append(NodeResult(unique_id, "skipped", f"upstream {cause} failed", python=True))
                continue
            try:
                run = run_python_model(spark, manifest, unique_id, project_dir, root / "python_models", True)
            except Exception as exc:  # a missing input (its dbt model failed) or the model's own error: reported
                message = f"{type(exc).__name__}: {str(exc)[:500]}"
                results.append(NodeResult(unique_id, "error", message, python=True))
                upstream.record(results[-1])
                log(f"python model {unique_id} failed: {message[:300]}")
                continue
            python_runs.append(run)
            results.append(NodeResult(unique_id, "success", f"{run.rows:,} rows", seconds=run.seconds, python=True))
            log(f"python model {run.name}: {run.rows:,} rows in {run.seconds:.1f} s (inputs read from Spark)")
        # As `dbt build` within one invocation: what depends on a node that failed in an earlier stage (a model,
        # a Python model, a test at error severity) is skipped, not built on the last run's tables.
        selectors = []
        for selector, unique_id in zip(stage.selectors, stage.ids, strict=True):
            if (cause := upstream.failed_before(unique_id)) is not None:
                results.append(NodeResult(unique_id, "skipped", f"upstream {cause} failed"))
            else:
                selectors.append(selector)
        if not selectors:
            continue
        args = [
            "build",
            "--target",
            TARGET,
            "--full-refresh",
            "--indirect-selection",
            "empty",
            "--target-path",
            str(root / "target"),
            "--log-path",
            str(root / "logs"),
            *dbt_args,
            "--select",
            *selectors,
        ]
        command = dbt_command(args, project_dir)[1:]
        log(f"dbt stage {stage.number}: {len(selectors)} nodes")
        result = runner.invoke(command)
        for item in getattr(result.result, "results", None) or []:
            results.append(_node_result(item))
            upstream.record(results[-1])
        if result.exception is not None:
            errors.append(f"dbt stage {stage.number}: {result.exception}")
    build = SparkBuild(exported, python_runs, len(stages), skipped, results, errors, time.monotonic() - started)
    if link:
        relations = built_relations(manifest, build)
        locations: dict[tuple[str, str], Path | None] = {}
        for schema, table in relations:
            if not is_view(spark, schema, table):
                locations[(schema, table)] = table_location(spark, schema, table)
            elif f"{schema}.{table}" in snapshot_views:
                locations[(schema, table)] = snapshot_view(spark, schema, table, root / "view_snapshots")
            else:  # read only by other dbt models: nothing outside Spark reads it
                locations[(schema, table)] = None
        try:
            link_relations(settings.warehouse_path, locations, keep=history_tables(manifest))
        except Exception as exc:  # every node's result is still reported; the step fails on this error
            build.errors.append(f"linking Spark's tables into DuckDB: {type(exc).__name__}: {exc}")
            return build
        build.linked = sorted(f"{s}.{t}" for (s, t), folder in locations.items() if folder is not None)
        log(
            f"DuckDB: {len(build.linked)} views over Spark's tables ({sum(1 for f in locations.values() if f is None)} "
            "Spark views that only dbt reads are not linked)"
        )
        if skipped:  # what Spark cannot build (the snapshot: Delta only) is built on DuckDB, from the views
            log(f"{len(skipped)} nodes Spark cannot build, built on DuckDB from Spark's tables: {', '.join(skipped)}")
            selectors = sorted(_selector(manifest["nodes"][u]) for u in skipped if u in manifest["nodes"])
            on_duckdb, error = _build_on_duckdb(selectors, dbt_args, root, project_dir)
            build.results += on_duckdb
            build.errors += [error] if error else []
            build.on_duckdb, build.skipped = dict(skipped), {}
    return build


class Upstream:
    """What failed so far in a build, and whether a node depends on it (through any path of the manifest)."""

    def __init__(self, manifest: dict) -> None:
        nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
        self._parents = {u: list(n.get("depends_on", {}).get("nodes", [])) for u, n in nodes.items()}
        self._failed: dict[str, str] = {}  # a node whose descendants must not build -> the failure's node
        self._ancestors: dict[str, set[str]] = {}

    def ancestors(self, unique_id: str) -> set[str]:
        if unique_id not in self._ancestors:
            found: set[str] = set()
            for parent in self._parents.get(unique_id, []):
                found |= {parent, *self.ancestors(parent)}
            self._ancestors[unique_id] = found
        return self._ancestors[unique_id]

    def record(self, result: NodeResult) -> None:
        """A model or Python model that errored blocks its descendants; a test that failed or errored at error
        severity blocks the descendants of what it tests (dbt build skips them)."""
        if result.passed:
            return
        if result.unique_id.startswith(("test.", "unit_test.")):
            for parent in self._parents.get(result.unique_id, []):
                self._failed.setdefault(parent, result.unique_id)
        else:
            self._failed.setdefault(result.unique_id, result.unique_id)

    def failed_before(self, unique_id: str) -> str | None:
        """The failed node that blocks ``unique_id``, or None."""
        return next((cause for node, cause in self._failed.items() if node in self.ancestors(unique_id)), None)


def history_tables(manifest: dict) -> set[tuple[str, str]]:
    """(schema, table) of the models a full refresh must not start over (``full_refresh=False``: identity's id
    log): a DuckDB table of theirs is kept aside, not dropped, when Spark's version is linked in its place."""
    return {
        (n["schema"], n["alias"])
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n.get("config", {}).get("full_refresh") is False
    }


def _build_on_duckdb(
    selectors: list[str], dbt_args: Sequence[str], root: Path, project_dir: Path
) -> tuple[list[NodeResult], str | None]:
    """`dbt build` of ``selectors`` on the DuckDB target, in a subprocess: dbt-duckdb keeps its connection open
    for the life of the process that ran it, and the Python assets after this step open the file with their own
    settings. The results (run_results.json), and an error when dbt could not run."""
    import subprocess

    from mos_pipelines.transform.project import dbt_command

    target = root / "duckdb_target"
    args = ["build", "--target", duckdb_target(project_dir), "--indirect-selection", "empty"]
    args += ["--target-path", str(target), "--log-path", str(root / "logs"), *dbt_args, "--select", *selectors]
    done = subprocess.run(dbt_command(args, project_dir), capture_output=True, text=True, check=False)
    results_file = target / "run_results.json"
    if not results_file.exists():
        return [], f"dbt on DuckDB: exit {done.returncode}: {(done.stdout + done.stderr)[-500:]}"
    results = [
        NodeResult(
            item["unique_id"],
            str(item["status"]),
            item.get("message") or "",
            item.get("failures"),
            float(item.get("execution_time") or 0.0),
            engine="duckdb",
        )
        for item in json.loads(results_file.read_text()).get("results", [])
    ]
    results_file.unlink()
    return results, None if done.returncode in (0, 1) else f"dbt on DuckDB: exit {done.returncode}"


def _node_result(item: Any) -> NodeResult:
    """A dbt run result (in process) as a NodeResult."""
    return NodeResult(
        item.node.unique_id,
        str(item.status),
        item.message or "",
        getattr(item, "failures", None),
        float(getattr(item, "execution_time", 0.0) or 0.0),
    )


def built_relations(manifest: dict, build: SparkBuild) -> list[tuple[str, str]]:
    """(schema, table) of every model and seed the build made, and of the tables its Python models wrote beside
    themselves."""
    relations = []
    for result in build.results:
        node = manifest["nodes"].get(result.unique_id)
        if result.status == "success" and node and node["resource_type"] in ("model", "seed", "snapshot"):
            relations.append((node["schema"], node["alias"]))
    for run in build.python_runs:
        relations += [tuple(name.split(".", 1)) for name in run.also_written]  # type: ignore[misc]
    return sorted(set(relations))


def not_built_relations(manifest_path: Path) -> dict[tuple[str, str], str]:
    """(schema, table) -> why a relation of the dbt project is not built on Spark (for the comparison)."""
    manifest = json.loads(manifest_path.read_text())
    _, skipped = stage_plan(manifest)
    relations = {}
    for unique_id, reason in skipped.items():
        node = manifest["nodes"].get(unique_id)
        if node and node["resource_type"] in ("model", "seed", "snapshot"):
            relations[(node["schema"], node["alias"])] = reason
    return relations
