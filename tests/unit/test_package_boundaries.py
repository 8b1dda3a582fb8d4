"""Logic packages are plain Python: they import neither Dagster (wiring lives in ``mos_pipelines/defs``) nor the
simulator (evaluation against its truth lives beside it, in ``mos_pipelines/simulation``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mos_pipelines"
LOGIC_PACKAGES = (
    "activation",
    "blueprint",
    "decisioning",
    "experiments",
    "identity",
    "ingestion",
    "insights",
    "llm",
    "lookalike",
    "policy",
    "quality",
    "transform",
)
FORBIDDEN = (
    "dagster",
    "dagster_dbt",
    "dagster_duckdb",
    "mos_pipelines.defs",
    "mos_pipelines.simulation",
    "mos_pipelines.runner",
    "mos_pipelines.definitions",
)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):  # function-level imports count too
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", LOGIC_PACKAGES)
def test_logic_package_imports_neither_dagster_nor_the_simulator(package: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for path in sorted((PACKAGE / package).rglob("*.py"))
        for line, name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert not offenders, "\n".join(offenders)
