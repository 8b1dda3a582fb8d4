"""The dbt split around gated models: descendants of a gate are a separate step, computed from
the manifest, with nothing left out and no step depending on a later one."""

from __future__ import annotations

import json

import pytest

from mos_pipelines.quality.gates import gated_dbt_models
from mos_pipelines.transform.layers import LayerError, split_layers
from mos_pipelines.transform.project import ensure_manifest


def _manifest(edges: dict[str, list[str]], types: dict[str, str] | None = None) -> dict:
    """A minimal manifest: node -> parents; unique ids are '<type>.p.<name>'."""
    types = types or {}
    ids = {n: f"{types.get(n, 'model')}.p.{n}" for n in edges}
    parent_map = {ids[n]: [ids[p] for p in ps] for n, ps in edges.items()}
    child_map = {uid: [] for uid in parent_map}
    for child, parents in parent_map.items():
        for parent in parents:
            child_map[parent].append(child)
    nodes = {ids[n]: {"name": n, "resource_type": types.get(n, "model"), "fqn": ["p", "dir", n]} for n in edges}
    return {"nodes": nodes, "parent_map": parent_map, "child_map": child_map}


def test_descendants_of_gated_models_form_the_second_layer():
    manifest = _manifest(
        {
            "stg": [],
            "events": ["stg"],
            "customers": ["stg"],
            "sessions": ["events"],
            "attribution": ["sessions", "customers"],
            "consent": ["stg"],
            "test_sessions": ["sessions", "events"],
            "test_events": ["events"],
        },
        types={"test_sessions": "test", "test_events": "test"},
    )
    layers = split_layers(manifest, ["events", "customers"])
    assert layers.gated == ("fqn:p.dir.attribution", "fqn:p.dir.sessions")
    assert layers.foundation == ("fqn:p.dir.consent", "fqn:p.dir.customers", "fqn:p.dir.events", "fqn:p.dir.stg")
    # a foundation test that also reads a second-layer model runs with the second layer
    assert layers.foundation_excluded_tests == ("fqn:p.dir.test_sessions",)


def test_a_gated_model_below_another_stays_in_the_foundation():
    manifest = _manifest({"events": [], "customers": ["events"], "ltv": ["customers"]})
    layers = split_layers(manifest, ["events", "customers"])
    assert layers.foundation == ("fqn:p.dir.customers", "fqn:p.dir.events")
    assert layers.gated == ("fqn:p.dir.ltv",)


def test_an_unknown_gated_model_is_an_error():
    with pytest.raises(LayerError, match="'fct_nothing'"):
        split_layers(_manifest({"a": []}), ["fct_nothing"])


def test_project_split_puts_sessions_and_the_snapshot_after_the_gates():
    manifest = json.loads(ensure_manifest().read_text())
    layers = split_layers(manifest, gated_dbt_models())
    assert set(gated_dbt_models()) == {"fct_events", "dim_customers", "fct_ad_spend_daily"}
    assert "fqn:mos_pipelines.marts.events.fct_sessions" in layers.gated
    assert any(s.endswith(".dim_customers_snapshot") for s in layers.gated)
    assert "fqn:mos_pipelines.marts.events.fct_events" in layers.foundation
    built = [n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed", "snapshot")]
    assert len(layers.foundation) + len(layers.gated) + len(layers.late) + len(layers.activation) == len(built)
    # no foundation node depends on a second-layer node (the steps run in order)
    by_selector = {"fqn:" + ".".join(n["fqn"]): uid for uid, n in manifest["nodes"].items()}
    second = {by_selector[s] for s in layers.gated}
    for selector in layers.foundation:
        assert not second.intersection(manifest["parent_map"][by_selector[selector]]), selector


def test_sync_models_are_a_third_layer_after_the_gated_one():
    manifest = _manifest(
        {
            "events": [],
            "features": ["events"],
            "sync_email": ["features"],
            "test_sync": ["sync_email", "events"],
            "test_features": ["features", "sync_email"],
        },
        types={"test_sync": "test", "test_features": "test"},
    )
    manifest["nodes"]["model.p.sync_email"]["fqn"] = ["p", "activation", "sync_email"]
    layers = split_layers(manifest, ["events"])
    assert layers.activation == ("fqn:p.activation.sync_email",)
    assert layers.gated == ("fqn:p.dir.features",)
    # tests that also read a sync model run with the activation step, not before it
    assert layers.foundation_excluded_tests == ("fqn:p.dir.test_sync",)
    assert layers.gated_excluded_tests == ("fqn:p.dir.test_features",)


def test_a_sync_model_that_reads_ungated_models_is_an_error():
    manifest = _manifest({"events": [], "consent": [], "sync_email": ["consent"], "sync_slack": []})
    manifest["nodes"]["model.p.sync_email"]["fqn"] = ["p", "activation", "sync_email"]
    manifest["nodes"]["model.p.sync_slack"]["fqn"] = ["p", "activation", "sync_slack"]  # reads only sources: allowed
    with pytest.raises(LayerError, match="sync_email are not downstream of any quality gate"):
        split_layers(manifest, ["events"])


def test_project_sync_models_form_the_activation_layer():
    manifest = json.loads(ensure_manifest().read_text())
    layers = split_layers(manifest, gated_dbt_models())
    assert {s.rsplit(".", 1)[1] for s in layers.activation} == {
        "sync_email__nurture",
        "sync_crm__lifecycle_stages",
        "sync_ads__audience_members",
        "sync_slack__top_notifications",
    }


def test_models_reading_python_asset_tables_are_a_late_layer_before_the_syncs():
    manifest = _manifest(
        {
            "events": [],
            "features": ["events"],
            "holdout": ["features"],
            "holdout_use": ["holdout"],
            "sync_email": ["features"],
            "test_holdout": ["holdout", "sync_email"],
        },
        types={"test_holdout": "test"},
    )
    manifest["nodes"]["model.p.sync_email"]["fqn"] = ["p", "activation", "sync_email"]
    manifest["sources"] = {
        "source.p.experiments.assignments": {"schema": "experiments"},
        "source.p.raw.events": {"schema": "raw"},
    }
    manifest["parent_map"]["model.p.holdout"].append("source.p.experiments.assignments")
    manifest["parent_map"]["model.p.events"].append("source.p.raw.events")  # landing data: not late
    layers = split_layers(manifest, ["events"])
    assert layers.late == ("fqn:p.dir.holdout", "fqn:p.dir.holdout_use")
    assert layers.gated == ("fqn:p.dir.features",)
    assert layers.activation == ("fqn:p.activation.sync_email",)
    assert layers.late_excluded_tests == ("fqn:p.dir.test_holdout",)  # it reads a sync model: runs with the syncs


def test_project_late_layer_holds_the_holdout_mart():
    manifest = json.loads(ensure_manifest().read_text())
    layers = split_layers(manifest, gated_dbt_models())
    assert "fqn:mos_pipelines.marts.marketing.fct_experiment_holdout" in layers.late
    assert "fqn:mos_pipelines.marts.marketing.fct_channel_segment_performance" in layers.gated
