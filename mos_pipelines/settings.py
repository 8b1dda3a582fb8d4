"""Paths, environment and instance configuration shared by the CLI, Dagster and dbt.

Everything lives under one folder, ``$MOS_HOME`` (default ``./.mos``): landing files, the DuckDB
warehouse, the simulator's truth, reports and the Dagster instance. Resolving it in one place keeps
dbt, the Python assets, the CLI and the Dagster UI on the same warehouse and run history.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

# One pool for every asset that writes the warehouse: DuckDB allows a single writer process.
WAREHOUSE_POOL = "duckdb_warehouse"
# The tag of a run that rebuilds everything (`mos run --full-refresh`): its dbt steps pass `--full-refresh` too, so
# the incremental models are rebuilt from scratch rather than re-run.
FULL_REFRESH_TAG = "mos/full_refresh"

# Telemetry and network-lookup switches for the libraries we run; set before they are imported.
QUIET_ENVIRONMENT = {
    "DO_NOT_TRACK": "1",
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}

DAGSTER_INSTANCE_YAML = f"""\
# Written by mos_pipelines.settings; edit freely, it is not overwritten.
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
  pools:
    # Every warehouse-writing asset is in pool "{WAREHOUSE_POOL}": DuckDB has one writer at a time.
    default_limit: 1
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
"""


@dataclass(frozen=True)
class Settings:
    """Resolved locations of everything MOS Pipelines reads and writes."""

    mos_home: Path

    @property
    def landing_dir(self) -> Path:
        return self.mos_home / "landing"

    @property
    def truth_dir(self) -> Path:
        return self.mos_home / "truth"

    @property
    def warehouse_path(self) -> Path:
        return self.mos_home / "warehouse.duckdb"

    @property
    def reports_dir(self) -> Path:
        return self.mos_home / "reports"

    @property
    def logs_dir(self) -> Path:
        """Full logs of command-line runs (dbt, Dagster, warnings); the console shows progress only."""
        return self.mos_home / "logs"

    @property
    def dagster_home(self) -> Path:
        """The Dagster instance (run history, schedules) always lives with its warehouse."""
        return self.mos_home / "dagster"


def get_settings() -> Settings:
    """Settings from the environment (``MOS_HOME``, default ``./.mos``), as absolute paths."""
    return Settings(mos_home=Path(os.environ.get("MOS_HOME", ".mos")).expanduser().resolve())


def export_environment(settings: Settings | None = None) -> Settings:
    """Export MOS_HOME, the telemetry switches and the DuckDB settings dbt's profile reads (``MOS_DUCKDB_*``, from
    ``config/warehouse.yaml``); writes no file. This is what loading the Dagster
    definitions needs (resources read ``MOS_HOME`` when a run starts); the Dagster instance belongs to the
    process that hosts the definitions (``mos`` commands point ``DAGSTER_HOME`` at ``$MOS_HOME/dagster``)."""
    settings = settings or get_settings()
    os.environ["MOS_HOME"] = str(settings.mos_home)
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    from mos_pipelines.warehouse import duckdb_settings  # reads config/, which imports this module

    for key, value in duckdb_settings(settings.warehouse_path).items():
        os.environ[f"MOS_DUCKDB_{key.upper()}"] = value  # dbt_project/profiles.yml: the warehouse's settings
    return settings


def configure_environment(settings: Settings | None = None) -> Settings:
    """Export MOS_HOME/DAGSTER_HOME and the telemetry switches, and create the Dagster instance folder
    (with a ``dagster.yaml`` that turns telemetry off and limits the warehouse pool).

    Called by the CLI commands (never at import) so that dbt (which reads ``MOS_HOME`` in
    ``profiles.yml``), the Python assets and the UI agree on one warehouse and one run history.
    """
    settings = export_environment(settings)
    dagster_home = settings.dagster_home
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_yaml = dagster_home / "dagster.yaml"
    if not instance_yaml.exists():
        instance_yaml.write_text(DAGSTER_INSTANCE_YAML)
    return settings
