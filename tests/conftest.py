"""Shared test setup: no network, no telemetry, and a throwaway MOS_HOME per test session."""

import os

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
