"""A dbt step on Spark (``engine: spark`` in config/warehouse.yaml, or ``mos run --engine spark``): the step's
selected models, seeds and tests built by ``mos_pipelines.spark.build`` in this process, reported to Dagster as
dagster-dbt reports a ``dbt build`` (an output per model, an asset check result per test), and each relation built
linked into the DuckDB warehouse as a view over Spark's files, so the Python assets downstream read Spark's tables.
A node that errors, or a test that fails at error severity, fails the step after every result is reported, as
``dbt build`` exits non-zero."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
from dagster_dbt.asset_utils import get_asset_check_key_for_test

from mos_pipelines.defs.resources import dbt_project
from mos_pipelines.defs.transform.translator import MosDbtTranslator
from mos_pipelines.settings import get_settings

RELATION_TYPES = ("model", "seed", "snapshot")


def relation_keys(manifest: dict, translator: MosDbtTranslator) -> dict[str, dg.AssetKey]:
    """Every model, seed and snapshot's asset key, by unique id."""
    return {
        unique_id: translator.get_asset_spec(manifest, unique_id, dbt_project).key
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in RELATION_TYPES
    }


def selected_nodes(
    context: dg.AssetExecutionContext, manifest: dict, translator: MosDbtTranslator, keys: dict[str, dg.AssetKey]
) -> tuple[set[str], dict[str, dg.AssetKey], dict[str, dg.AssetCheckKey]]:
    """The dbt unique ids of the step's selection (its selected assets, their selected checks, the unit tests of
    selected models and the singular tests whose every parent is selected), with each one's asset or check key."""
    selected = set(context.selected_asset_keys)
    assets = {unique_id: key for unique_id, key in keys.items() if key in selected}
    checks: dict[str, dg.AssetCheckKey] = {}
    selected_checks = set(context.selected_asset_check_keys)
    ids = set(assets)
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] != "test":
            continue
        check = get_asset_check_key_for_test(manifest, translator, unique_id, dbt_project)
        relations = [p for p in node["depends_on"]["nodes"] if p in keys]
        if check is not None:
            if check in selected_checks:
                checks[unique_id] = check
                ids.add(unique_id)
        elif relations and all(p in assets for p in relations):  # a singular test over several selected models
            ids.add(unique_id)
    for unique_id, node in manifest.get("unit_tests", {}).items():
        if any(p in assets for p in node.get("depends_on", {}).get("nodes", [])):
            ids.add(unique_id)
    return ids, assets, checks


def views_read_outside_dbt(
    context: dg.AssetExecutionContext, manifest: dict, keys: dict[str, dg.AssetKey], assets: dict[str, dg.AssetKey]
) -> set[str]:
    """ "schema.table" of the step's dbt views that an asset other than a dbt model reads (a Python asset, an
    activation sync): on Spark their rows are written out for DuckDB to read."""
    dbt_keys = set(keys.values())
    graph = context.job_def.asset_layer.asset_graph  # `execute_in_process` sets no repository on the context
    views = set()
    for unique_id, key in assets.items():
        node = manifest["nodes"][unique_id]
        if node.get("config", {}).get("materialized") == "view" and not graph.get(key).child_keys <= dbt_keys:
            views.add(f"{node['schema']}.{node['alias']}")
    return views


def _severity(node: dict[str, Any], status: str) -> dg.AssetCheckSeverity:
    configured = str(node.get("config", {}).get("severity", "error")).lower()
    return dg.AssetCheckSeverity.WARN if status == "warn" or configured == "warn" else dg.AssetCheckSeverity.ERROR


def spark_dbt_events(context: dg.AssetExecutionContext, manifest_path: Any, dbt_args: Sequence[str]) -> Iterator[Any]:
    """Build the step's selection on Spark; its Dagster events; raises at the end when a node failed."""
    from mos_pipelines.spark.build import build_on_spark

    manifest = json.loads(manifest_path.read_text())
    translator = MosDbtTranslator()
    keys = relation_keys(manifest, translator)
    ids, assets, checks = selected_nodes(context, manifest, translator, keys)
    context.log.info(f"engine spark: {len(ids)} dbt nodes of this step built on Spark")
    build = build_on_spark(
        get_settings(),
        manifest_path,
        log=context.log.info,
        only=ids,
        dbt_args=dbt_args,
        link=True,
        snapshot_views=views_read_outside_dbt(context, manifest, keys, assets),
    )
    for result in build.results:
        node = manifest["nodes"].get(result.unique_id, {})
        metadata: dict[str, Any] = {
            "unique_id": result.unique_id,
            "status": result.status,
            "Execution Duration": round(result.seconds, 3),
            "engine": result.engine,
        }
        if result.unique_id in assets and result.status == "success":
            yield dg.Output(value=None, output_name=assets[result.unique_id].to_python_identifier(), metadata=metadata)
        elif result.unique_id in checks and result.status == "skipped":  # an upstream failed: no evaluation
            context.log.warning(f"{result.unique_id}: skipped: {result.message}")
        elif result.unique_id in checks:
            check = checks[result.unique_id]
            yield dg.AssetCheckResult(
                asset_key=check.asset_key,
                check_name=check.name,
                passed=result.status == "pass",
                severity=_severity(node, result.status),
                metadata={**metadata, **({"failures": result.failures} if result.failures is not None else {})},
                description=result.message[:500] or None,
            )
    for unique_id, reason in build.skipped.items():
        if unique_id in assets:
            context.log.warning(f"not built on Spark: {unique_id}: {reason}")
    if build.failures:
        raise dg.Failure(
            description=f"{len(build.failures)} dbt nodes failed on Spark",
            metadata={"failures": "\n".join(build.failures[:50])},
        )
