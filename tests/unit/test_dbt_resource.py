"""The dbt resource skips dagster-dbt's per-run ``dbt --version`` and per-invocation in-process adapter."""

from __future__ import annotations

import sys
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest
from dagster_dbt.core import resource as dagster_dbt_resource
from packaging import version

from mos_pipelines.defs.resources import MosDbtCliResource, dbt_project
from mos_pipelines.transform.project import dbt_executable


def _resource(executable: str) -> MosDbtCliResource:
    return MosDbtCliResource(
        project_dir=str(dbt_project.project_dir), profiles_dir=str(dbt_project.profiles_dir), dbt_executable=executable
    )


def test_own_dbt_version_is_read_without_a_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_subprocess(*args: object, **kwargs: object) -> bytes:
        raise AssertionError(f"dbt was started: {args}")

    monkeypatch.setattr(dagster_dbt_resource, "check_output", no_subprocess)
    own = str(Path(sys.executable).parent / "dbt")
    assert _resource(own)._cli_version == version.parse(installed_version("dbt-core"))
    assert dbt_executable() == own  # the project's resource runs this environment's dbt


def test_another_executable_is_still_asked(tmp_path: Path) -> None:
    other = tmp_path / "dbt"  # e.g. the Fusion engine somewhere else: its own answer counts
    other.write_text('#!/bin/sh\necho "dbt-fusion 2.0.0-preview.45"\n')
    other.chmod(0o755)
    assert _resource(str(other))._cli_version == version.parse("2.0.0")


def test_no_adapter_is_built_in_the_dagster_process() -> None:
    # dagster-dbt treats a None adapter as "no metadata fetches"; it used to parse the project's macros here
    assert _resource(dbt_executable())._initialize_dbt_core_adapter(["build"]) is None


def test_the_definitions_use_it() -> None:
    from mos_pipelines.defs.resources import resources

    assert isinstance(resources().resources["dbt"], MosDbtCliResource)
