"""Great Expectations 1.x suites (``quality/suites/*.json``) validated on pandas DataFrames.

Each gate aggregates in DuckDB, reads the (small) frame into pandas and validates it here; GX's SQL
datasource over duckdb-engine is not used. Thresholds are suite parameters (``{"$PARAMETER": ...}``)
bound from ``config/quality.yaml`` at validation time, so the suites hold no numbers to drift.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from mos_pipelines.settings import PROJECT_ROOT

SUITES_DIR = PROJECT_ROOT / "quality" / "suites"  # GX suites (no numbers: thresholds are config/quality.yaml)

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


class SuiteError(ValueError):
    """A suite file is missing or not a valid GX suite; the message names the file."""


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str  # e.g. expect_column_values_to_be_between(change)
    success: bool
    observed: Any  # GX's observed_value (aggregate expectations) or unexpected_percent
    unexpected_rows: list[dict]  # the failing rows (columns named in the call), when GX lists them


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    success: bool
    expectations: list[ExpectationOutcome]


@lru_cache(maxsize=1)
def _batch_definition():
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    source = context.data_sources.add_pandas("mos_quality")
    return source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole_frame")


def load_suite(name: str, suites_dir: Path = SUITES_DIR):
    """The GX ExpectationSuite stored as ``<suites_dir>/<name>.json``."""
    import great_expectations as gx

    path = suites_dir / f"{name}.json"
    try:
        data = json.loads(path.read_text())
        return gx.ExpectationSuite(name=data["name"], expectations=data["expectations"], meta=data.get("meta"))
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite ({exc})") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise SuiteError(f"{path}: not a valid expectation suite ({exc})") from exc


def validate(
    name: str, frame: pd.DataFrame, parameters: dict[str, Any], index_columns: list[str], suites_dir: Path = SUITES_DIR
) -> SuiteOutcome:
    """Validate ``frame`` against suite ``name`` with ``parameters`` bound; failing rows carry
    ``index_columns`` so a report can say which file/day/customer broke the expectation."""
    suite = load_suite(name, suites_dir)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame.reset_index(drop=True)})
    result = batch.validate(
        suite,
        expectation_parameters=parameters,
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": index_columns},
    )
    outcomes = []
    for r in result.results:
        config = r.expectation_config
        details = r.result or {}
        column = config.kwargs.get("column", "")
        observed = details.get("observed_value", details.get("unexpected_percent"))
        rows = [
            {k: _plain(v) for k, v in row.items()}
            for row in (details.get("unexpected_index_list") or [])
            if isinstance(row, dict)
        ]
        outcomes.append(ExpectationOutcome(f"{config.type}({column})", bool(r.success), _plain(observed), rows))
    return SuiteOutcome(name, bool(result.success), outcomes)


def _plain(value: Any) -> Any:
    """numpy and pandas scalars as plain Python values (JSON and Dagster metadata friendly)."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
