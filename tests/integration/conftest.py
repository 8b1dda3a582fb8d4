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
# Small worlds have too few paying customers for a lookalike seed, so by default they define no audience.
NO_AUDIENCES = Path(__file__).with_name("no_audiences.yaml")


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


@pytest.fixture(scope="module", autouse=True)
def lookalike_config(request: pytest.FixtureRequest) -> Iterator[Path]:
    """``MOS_LOOKALIKE_CONFIG`` while an integration module runs: the module's ``LOOKALIKE_CONFIG`` if it
    sets one, else a config without audiences. Autouse fixtures come first in their scope, so the
    module's worlds (and subprocesses such as `mos dev`) see it; it is undone when the module ends, so
    unit tests run later by the same worker read the bundled config."""
    path = Path(getattr(request.module, "LOOKALIKE_CONFIG", NO_AUDIENCES))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOS_LOOKALIKE_CONFIG", str(path))
        yield path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A small world built once per test module (each module gets its own MOS_HOME)."""
    yield build_world(tmp_path_factory.mktemp("mos_home"), SMALL_WORLD)
