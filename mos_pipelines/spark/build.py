"""A whole build of the dbt project on Spark: the raw layer exported from DuckDB, then dbt (`--target spark`, in this
process, so dbt-spark's session is this one) in stages around the dbt Python models, which run between the stages
(mos_pipelines.spark.python_models). Always a full refresh: parquet tables have no delete or merge
(macros/cross_db/delete_insert_strategy.sql)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mos_pipelines.settings import DBT_PROJECT_DIR, Settings
from mos_pipelines.spark.python_models import PythonModelRun, run_python_model
from mos_pipelines.spark.raw_layer import ExportedTable, export_sources, source_tables
from mos_pipelines.spark.session import TARGET, spark_session

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


@dataclass
class SparkBuild:
    exported: list[ExportedTable]
    python_runs: list[PythonModelRun]
    stages: int
    skipped: dict[str, str]  # unique id -> reason
    failures: list[str]  # dbt results that did not pass, "unique_id: status: message"
    nodes_built: int
    seconds: float

    @property
    def success(self) -> bool:
        return not self.failures


def _selector(node: dict) -> str:
    """A selector naming exactly this node: its fully qualified name (unit tests: `unit_test:` prefix not needed)."""
    return ".".join(node["fqn"])


def stage_plan(manifest: dict) -> tuple[list[Stage], dict[str, str]]:
    """Stages in build order and the nodes skipped on Spark. A dbt node's stage is the highest of its parents'; a
    Python model's is one more than its parents' highest (it runs before the dbt nodes of its stage, after the dbt
    nodes of the stage before). Tests land in the stage of their last parent, so every test runs once, after all its
    parents exist."""
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
    return [stages[n] for n in sorted(stages)], skipped


def build_on_spark(
    settings: Settings,
    manifest_path: Path,
    log: Callable[[str], None] = print,
    project_dir: Path = DBT_PROJECT_DIR,
) -> SparkBuild:
    """Export the raw layer, then build every dbt node on Spark stage by stage; dbt's failures are collected, not
    raised (the build goes on to the end, as `dbt build` does within one invocation)."""
    from dbt.cli.main import dbtRunner

    from mos_pipelines.transform.project import dbt_command

    started = time.monotonic()
    root = settings.mos_home / "spark"
    manifest = json.loads(manifest_path.read_text())
    spark = spark_session(project_dir)
    exported = export_sources(settings.warehouse_path, spark, source_tables(manifest_path), root / "sources")
    log(
        f"raw layer: {sum(1 for t in exported if t.rows is not None)} tables exported to Spark "
        f"({sum(t.rows or 0 for t in exported):,} rows)"
    )
    stages, skipped = stage_plan(manifest)
    for unique_id, reason in sorted(skipped.items()):
        log(f"not built on Spark: {unique_id}: {reason}")
    runner = dbtRunner()
    python_runs: list[PythonModelRun] = []
    failures: list[str] = []
    built = 0
    for stage in stages:
        for unique_id in sorted(stage.python_models):  # one stage's Python models never depend on each other
            try:
                run = run_python_model(spark, manifest, unique_id, project_dir, root / "python_models", True)
            except Exception as exc:  # a missing input (its dbt model failed) or the model's own error: reported
                failures.append(f"{unique_id}: error: {type(exc).__name__}: {str(exc)[:500]}")
                log(f"python model {unique_id} failed: {type(exc).__name__}: {str(exc)[:300]}")
                continue
            python_runs.append(run)
            log(f"python model {run.name}: {run.rows:,} rows in {run.seconds:.1f} s (inputs read from Spark)")
        if not stage.selectors:
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
            "--select",
            *stage.selectors,
        ]
        command = dbt_command(args, project_dir)[1:]
        log(f"dbt stage {stage.number}: {len(stage.selectors)} nodes")
        result = runner.invoke(command)
        results = getattr(result.result, "results", None) or []
        for item in results:
            built += 1
            status = str(item.status)
            if status not in ("success", "pass"):
                failures.append(f"{item.node.unique_id}: {status}: {(item.message or '')[:500]}")
        if result.exception is not None:
            failures.append(f"dbt stage {stage.number}: {result.exception}")
    return SparkBuild(exported, python_runs, len(stages), skipped, failures, built, time.monotonic() - started)


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
