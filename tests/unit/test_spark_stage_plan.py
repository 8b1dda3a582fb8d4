"""The Spark build's stage plan over the real dbt manifest (no Spark needed): each dbt Python model runs after every
node it reads and before every node that reads it, each test once after all its parents, the snapshot is left out
with its reason."""

from __future__ import annotations

import json

from mos_pipelines.spark.build import stage_plan
from mos_pipelines.transform.project import ensure_manifest


def _plan():
    manifest = json.loads(ensure_manifest().read_text())
    stages, skipped = stage_plan(manifest)
    nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    by_fqn = {".".join(n["fqn"]): uid for uid, n in nodes.items()}
    where: dict[str, tuple[int, int]] = {}  # unique id -> (stage, 0 = Python step before dbt, 1 = dbt)
    for stage in stages:
        for uid in stage.python_models:
            where[uid] = (stage.number, 0)
        for selector in stage.selectors:
            where[by_fqn[selector]] = (stage.number, 1)
    return manifest, nodes, where, skipped


def test_every_python_model_runs_between_what_it_reads_and_what_reads_it():
    _, nodes, where, _ = _plan()
    python = [uid for uid, n in nodes.items() if n.get("language") == "python"]
    assert len(python) == 5
    for uid, node in nodes.items():
        for parent in node.get("depends_on", {}).get("nodes", []):
            if uid in where and parent in where:
                assert where[parent] <= where[uid], (parent, uid)
                if parent in python or uid in python:
                    assert where[parent] < where[uid], (parent, uid)


def test_every_node_is_planned_once_or_skipped_with_a_reason():
    manifest, nodes, where, skipped = _plan()
    built = {
        uid for uid, n in nodes.items() if n["resource_type"] in ("model", "seed", "snapshot", "test", "unit_test")
    }
    assert set(where) | set(skipped) == built
    assert not set(where) & set(skipped)
    assert "snapshot.mos_pipelines.dim_customers_snapshot" in skipped
    assert all(reason for reason in skipped.values())


def test_fqn_selectors_name_one_node_each():
    _, nodes, where, _ = _plan()
    fqns = [".".join(nodes[uid]["fqn"]) for uid in where]
    assert len(fqns) == len(set(fqns))


def test_a_failure_blocks_what_depends_on_it_in_later_stages_as_dbt_build_does():
    """A model that errored blocks its descendants; a test that failed blocks the descendants of what it tests, not
    that model itself; a test that only warned blocks nothing."""
    from mos_pipelines.spark.build import NodeResult, Upstream

    manifest = json.loads(ensure_manifest().read_text())
    events = "model.mos_pipelines.fct_events"
    child = next(u for u, n in manifest["nodes"].items() if events in n.get("depends_on", {}).get("nodes", []))
    test = next(
        u
        for u, n in manifest["nodes"].items()
        if n["resource_type"] == "test" and n.get("depends_on", {}).get("nodes") == [events]
    )
    grandchild = next(
        (u for u, n in manifest["nodes"].items() if child in n.get("depends_on", {}).get("nodes", [])), child
    )

    upstream = Upstream(manifest)
    upstream.record(NodeResult(test, "warn"))
    assert upstream.failed_before(child) is None
    upstream.record(NodeResult(test, "fail", "3 rows"))
    assert upstream.failed_before(events) is None
    assert upstream.failed_before(child) == test
    assert upstream.failed_before(grandchild) == test

    upstream = Upstream(manifest)
    upstream.record(NodeResult(events, "error", "boom"))
    assert upstream.failed_before(grandchild) == events
    assert upstream.failed_before("model.mos_pipelines.stg_segment__events") is None
