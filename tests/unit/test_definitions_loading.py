"""Building the Dagster definitions reads and writes nothing but what it must: no file in an empty MOS_HOME, no
dbt parse; a domain that cannot load (a broken config file) becomes one error asset and every other domain loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from mos_pipelines.settings import PROJECT_ROOT, QUIET_ENVIRONMENT

LOAD = """
import json, time
started = time.perf_counter()
import mos_pipelines.definitions as module
imported = time.perf_counter() - started
from mos_pipelines.defs import load_errors
definitions = module.defs()
graph = definitions.resolve_asset_graph()
print(json.dumps({
    "keys": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
    "materializable": sorted(k.to_user_string() for k in graph.materializable_asset_keys),
    "errors": [[e.domain, e.message] for e in load_errors(definitions)],
    "import_seconds": imported,
}))
"""


def _load(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", LOAD],
        env={**os.environ, **QUIET_ENVIRONMENT, **env},
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _parse_outputs(target: Path) -> dict[str, float]:
    """What a `dbt parse` by ``ensure_manifest`` rewrites (other test workers may write their own run folders)."""
    names = ("manifest.json", "mos_fingerprint.txt", "partial_parse.msgpack", "semantic_manifest.json")
    return {name: (target / name).stat().st_mtime for name in names if (target / name).exists()}


def test_building_the_definitions_creates_no_file(tmp_path):
    home = tmp_path / "empty_home"
    target = PROJECT_ROOT / "dbt_project" / "target"
    before = _parse_outputs(target)
    loaded = _load({"MOS_HOME": str(home)})
    assert not home.exists()  # no dagster.yaml, no warehouse, no folder
    assert before and _parse_outputs(target) == before  # no dbt parse: commands prepare the manifest, imports do not
    assert loaded["errors"] == []
    assert {"raw/events", "marts/dim_customers", "ml/lookalike_scores"} <= set(loaded["keys"])


def test_a_broken_activation_config_takes_down_only_activation(tmp_path):
    config = yaml.safe_load((PROJECT_ROOT / "config" / "activation.yaml").read_text())
    name = next(iter(config["destinations"]))
    config["destinations"][name]["channel"] = "carrier_pigeon"
    broken = tmp_path / "activation.yaml"
    broken.write_text(yaml.safe_dump(config))
    loaded = _load({"MOS_HOME": str(tmp_path / "home"), "MOS_ACTIVATION_CONFIG": str(broken)})
    [[domain, message]] = loaded["errors"]
    assert domain == "activation"
    assert str(broken) in message and f"destinations.{name}.channel" in message
    keys = set(loaded["keys"])
    assert {"raw/events", "staging/stg_commerce__orders", "marts/dim_customers", "insights/insights"} <= set(
        loaded["materializable"]
    )
    assert "load_errors/activation" in keys
    assert not any(k.startswith("activation/") for k in loaded["materializable"])  # no sync model, no delivery


def test_a_selection_of_one_crm_store_table_runs_the_whole_copy():
    """The CRM store copy writes its four tables at once (a multi-asset that cannot be subset): a selection that
    reaches one of them (`mos run --select '+key:marts/dim_customer_identity_map'`) takes all four, as Dagster
    refuses a job with part of it."""
    import dagster as dg

    from mos_pipelines.runner import load_definitions, resolve_selection

    keys = set(resolve_selection(load_definitions(prepare=False), "+key:marts/dim_customer_identity_map"))
    tables = ("crm_store_edits", "crm_store_notes", "crm_store_people", "crm_store_relationships")
    assert {dg.AssetKey(["ops", table]) for table in tables} <= keys
    assert dg.AssetKey(["marts", "dim_customers"]) not in keys  # the selection stays what was asked otherwise
