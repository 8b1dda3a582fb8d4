"""Integration fixtures: a generated world in a temporary MOS_HOME, built through Dagster for real."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
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


def _shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every worker of this pytest session sees (xdist workers' base folders share a parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The small default world (SMALL_WORLD, no audiences), built ONCE per test session: the first worker to ask
    builds it under a file lock, the others wait and reuse it (its first run's outcome is kept beside it)."""
    root = _shared_root(tmp_path_factory)
    home, outcome_file = root / "shared_world", root / "shared_world.outcome.json"
    with (root / "shared_world.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not outcome_file.exists():
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("MOS_LOOKALIKE_CONFIG", str(NO_AUDIENCES))
                built = build_world(home, SMALL_WORLD)
            record = dataclasses.asdict(built.first_run)
            record["log_file"] = str(record["log_file"]) if record["log_file"] else None
            outcome_file.write_text(json.dumps(record))
    record = json.loads(outcome_file.read_text())
    record["log_file"] = Path(record["log_file"]) if record["log_file"] else None
    return World(settings=Settings(mos_home=home), config=SMALL_WORLD, first_run=RunOutcome(**record))


@pytest.fixture(scope="module")
def world(shared_world: World) -> World:
    """The shared small world, READ-ONLY: modules of both workers read it at once (DuckDB read-only opens), so a
    test that runs assets, lands files or writes the warehouse takes ``world_copy`` instead."""
    use_home(shared_world.settings)
    return shared_world


@pytest.fixture(scope="module")
def world_copy(shared_world: World, tmp_path_factory: pytest.TempPathFactory) -> World:
    """A private copy of the shared world for a module that writes (its warehouse, landing files and Dagster
    instance: paths inside are relative to MOS_HOME, so the copy carries on where the build left off)."""
    home = tmp_path_factory.mktemp("mos_home") / "home"
    shutil.copytree(shared_world.settings.mos_home, home)
    copy = World(settings=Settings(mos_home=home), config=shared_world.config, first_run=shared_world.first_run)
    use_home(copy.settings)
    return copy
