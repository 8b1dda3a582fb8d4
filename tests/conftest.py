"""Shared test setup: no network, no telemetry (the same switches the CLI and Dagster set)."""

import os
from pathlib import Path

import pytest

from mos_pipelines.settings import QUIET_ENVIRONMENT

for key, value in QUIET_ENVIRONMENT.items():
    os.environ.setdefault(key, value)
# the builds' deliveries must not depend on the hour the suite runs at (see the file)
os.environ.setdefault("MOS_POLICY_CONFIG", str(Path(__file__).parent / "policy_any_hour.yaml"))


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest():
    """The dbt manifest the definitions are built from, prepared once per session (what `mos prepare` does):
    loading the definitions only reads it. ``ensure_manifest`` holds a file lock, so parallel workers agree."""
    from mos_pipelines.transform.project import ensure_manifest

    return ensure_manifest()


# The longest modules first (their whole time, measured on the clean-clone CI of 2026-12-06), so the two xdist
# workers (`--dist loadfile`: a module stays on one worker) do not end with one of them alone on a long module.
LONGEST_FIRST = (
    "tests/integration/test_run_matrix_partial_landings.py",
    "tests/integration/test_run_matrix_small_worlds.py",
    "tests/integration/test_insights_recall.py",
    "tests/integration/test_dagster_ui.py",
    "tests/integration/test_insights.py",
    "tests/integration/test_experiments.py",
    "tests/integration/test_activation.py",
    "tests/integration/test_incremental_day.py",
    "tests/integration/test_lookalike.py",
    "tests/integration/test_marketing_marts.py",
    "tests/integration/test_quality_gates.py",
    "tests/integration/test_customer_marts.py",
)


def pytest_collection_modifyitems(config, items):  # noqa: ANN001 (pytest hook)
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(item.nodeid.split("::")[0], len(rank)), order[id(item)]))
