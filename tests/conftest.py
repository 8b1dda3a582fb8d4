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


# The modules that take longest (a world or a Spark run of their own; seconds of one worker in CI, 2026-12-07),
# longest first. `make test` hands whole modules to its workers in collection order (`--dist loadfile
# --no-loadscope-reorder`): started first, they do not end the run alone while the other workers idle.
LONGEST_FIRST = (
    "tests/integration/test_spark.py",  # ~640 s: the shared world, then the whole run on Spark
    "tests/integration/test_run_matrix_small_worlds.py",  # ~440 s: two worlds through the CLI
    "tests/integration/test_lookalike.py",  # ~225 s
    "tests/integration/test_quality_gates.py",  # ~200 s
    "tests/integration/test_insights.py",  # ~150 s
    "tests/integration/test_marketing_marts.py",  # ~120 s
    "tests/integration/test_crm_erasure.py",  # ~120 s, on a copy of the shared world
    "tests/integration/test_incremental_lookback.py",  # ~100 s, on a copy of the shared world
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first (``LONGEST_FIRST``), the rest in their collected order; a module's tests stay
    together and in order (the sort is stable)."""
    rank = {path: position for position, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
