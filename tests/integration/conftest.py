"""Integration fixtures: a generated world in a temporary MOS_HOME, built through Dagster for real."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from mos_pipelines.runner import RunOutcome, run_assets
from mos_pipelines.settings import Settings, configure_environment
from mos_pipelines.simulation import WorldConfig, generate_world

SMALL_WORLD = WorldConfig(seed=11, people=400, days=6)
# Small worlds have too few paying customers for a lookalike seed: no audiences unless a module sets
# its own config (test_lookalike.py). Subprocesses (`mos dev`) inherit it.
os.environ["MOS_LOOKALIKE_CONFIG"] = str(Path(__file__).with_name("no_audiences.yaml"))


@dataclass
class World:
    """A MOS_HOME with generated landing files and the first full build's outcome."""

    settings: Settings
    config: WorldConfig
    first_run: RunOutcome

    @property
    def manifest(self) -> dict:
        return json.loads((self.settings.truth_dir / "manifest.json").read_text())

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.settings.warehouse_path), read_only=True)

    def run(self, select: str | None = None) -> RunOutcome:
        use_home(self.settings)
        return run_assets(select)


def use_home(settings: Settings) -> None:
    """Point this process (resources, dbt, Dagster instance) at the given MOS_HOME."""
    os.environ["MOS_HOME"] = str(settings.mos_home)
    configure_environment(settings)


def build_world(home: Path, config: WorldConfig, select: str | None = None) -> World:
    settings = Settings(mos_home=home)
    use_home(settings)
    generate_world(config, home)
    outcome = run_assets(select)
    return World(settings=settings, config=config, first_run=outcome)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A small world built once per test module (each module gets its own MOS_HOME)."""
    yield build_world(tmp_path_factory.mktemp("mos_home"), SMALL_WORLD)
