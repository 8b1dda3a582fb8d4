"""The run matrix (issue 14): `mos run`, then `mos activation run --dry-run`, as a new user runs them, on worlds
smaller than the demo and on landing zones that hold only part of the sources. Shared by the two test modules
(split so that the two pytest workers build their worlds at the same time)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mos_pipelines.settings import PROJECT_ROOT, QUIET_ENVIRONMENT

MOS = [sys.executable, "-c", "from mos_pipelines.cli import app; app()"]
BUNDLED_LOOKALIKE = PROJECT_ROOT / "config" / "lookalike.yaml"


@dataclass
class Outcome:
    """One command's exit code and what it printed."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class MatrixWorld:
    home: Path
    run: Outcome
    activation: Outcome

    def query(self, sql: str):
        with duckdb.connect(str(self.home / "warehouse.duckdb"), read_only=True) as con:
            return con.execute(sql).fetchall()

    def scalar(self, sql: str):
        return self.query(sql)[0][0]


def mos(home: Path, *args: str, env: dict[str, str] | None = None) -> Outcome:
    """Run the `mos` command in a fresh process against ``home``, with the bundled lookalike audiences."""
    env = {
        **os.environ,
        **QUIET_ENVIRONMENT,
        "MOS_HOME": str(home),
        "MOS_LOOKALIKE_CONFIG": str(BUNDLED_LOOKALIKE),
        "COLUMNS": "200",
        **(env or {}),
    }
    done = subprocess.run([*MOS, *args], env=env, capture_output=True, text=True, cwd=PROJECT_ROOT)
    return Outcome(done.returncode, done.stdout, done.stderr)


def keep_only(home: Path, sources: set[str]) -> None:
    """Delete every landing source folder not in ``sources`` (and the truth: this is data we did not generate)."""
    for folder in (home / "landing").iterdir():
        if folder.name not in sources:
            shutil.rmtree(folder)
    shutil.rmtree(home / "truth", ignore_errors=True)


def generate(home: Path, people: int, days: int, seed: int = 7) -> None:
    generated = mos(home, "generate", "--seed", str(seed), "--people", str(people), "--days", str(days))
    assert generated.code == 0, generated.output


def build(home: Path) -> MatrixWorld:
    run = mos(home, "run")
    activation = mos(home, "activation", "run", "--dry-run")
    return MatrixWorld(home, run, activation)


def assert_clean_success(world: MatrixWorld) -> None:
    """Both commands succeeded, printed no stack trace and no dbt log lines, and the run's log file exists."""
    assert world.run.code == 0, world.run.output[-3000:]
    assert world.activation.code == 0, world.activation.output[-3000:]
    for outcome in (world.run, world.activation):
        assert "Traceback" not in outcome.output
    assert "START sql" not in world.run.output and "Running with dbt" not in world.run.output
    logs = list((world.home / "logs").glob("run_*.log"))
    assert logs and "Running with dbt" in logs[0].read_text()
    assert f"Full log: {logs[0]}" in world.run.stdout.replace("\n", "")
