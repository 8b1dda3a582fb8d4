"""Lint the dbt SQL with sqlfluff (dbt templater, ``dbt_project/.sqlfluff``) and the configuration's vars.

The dbt templater compiles every model, so it needs the vars dbt receives (``mos__*``); sqlfluff's own config
files can only hold text for them. This runs sqlfluff's Python API with the vars as its dbt templater
``context`` (real lists and mappings), so they are declared once, in ``config/``. ``make lint`` calls it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mos_pipelines.configuration.dbt import dbt_vars
from mos_pipelines.settings import DBT_PROJECT_DIR


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    position: int
    code: str
    description: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.position}: {self.code} {self.description}"


def lint(
    paths: Iterable[str] = ("models", "tests"),
    project_dir: Path = DBT_PROJECT_DIR,
    values: dict[str, Any] | None = None,
) -> tuple[list[Violation], int]:
    """Every sqlfluff violation in ``paths`` (relative to the dbt project) and the number of files linted, from
    the project folder (sqlfluff only takes the templater setting from the working directory's config)."""
    from sqlfluff.core import FluffConfig, Linter

    context = dbt_vars() if values is None else values

    class WithVars(FluffConfig):
        """A config (and each file's child config, made by this class too) with the vars as the dbt templater's
        context, as objects: ``set_value`` and config files would turn them into text."""

        def __init__(self, configs: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> None:
            configs = dict(configs or {})
            templater = dict(configs.get("templater") or {})
            templater["dbt"] = {**(templater.get("dbt") or {}), "context": context}
            configs["templater"] = templater
            super().__init__(configs, *args, **kwargs)

    previous = Path.cwd()
    os.chdir(project_dir)
    try:
        result = Linter(config=WithVars.from_path(".")).lint_paths(tuple(paths))
    finally:
        os.chdir(previous)
    found = []
    records = result.as_records()
    for record in records:
        for v in record["violations"]:
            found.append(
                Violation(
                    str(Path(record["filepath"])), v["start_line_no"], v["start_line_pos"], v["code"], v["description"]
                )
            )
    return found, len(records)
