"""Shared test setup: no network, no telemetry (the same switches the CLI and Dagster set)."""

import os

from mos_pipelines.settings import QUIET_ENVIRONMENT

for key, value in QUIET_ENVIRONMENT.items():
    os.environ.setdefault(key, value)
