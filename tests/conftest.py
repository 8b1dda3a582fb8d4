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
