"""Parts of an asset that could not be computed in a run, and why.

An asset made of independent parts (lookalike audiences, experiments, paid channels, insight families)
computes every part it can and skips the others with a reason instead of failing the run: a seed too
small to learn from, an experiment without exposures, a channel without spend. ``ops.skipped_parts``
holds, per asset, the parts skipped by its latest materialization (replaced at every materialization,
so an empty set means everything was computed); ``mos summary`` and the Dagster check
``all_parts_computed`` (a warning, never blocking) read it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from mos_pipelines.warehouse import insert_frame, table_exists, transaction

DDL = """
create schema if not exists ops;
create table if not exists ops.skipped_parts (
    asset varchar not null,
    part varchar not null,
    reason varchar not null,
    run_id varchar,
    recorded_at timestamptz not null
);
"""


@dataclass(frozen=True)
class SkippedPart:
    """One part of an asset that was not computed: which (``part``) and why (``reason``, for a person)."""

    part: str
    reason: str

    def line(self) -> str:
        return f"{self.part}: {self.reason}"


def record(
    con: duckdb.DuckDBPyConnection, asset: Sequence[str], skipped: Iterable[SkippedPart], run_id: str | None = None
) -> None:
    """Replace the asset's skipped parts with this materialization's (none: every part was computed)."""
    con.execute(DDL)
    name = "/".join(asset)
    rows = pd.DataFrame(
        [
            {
                "asset": name,
                "part": s.part,
                "reason": s.reason,
                "run_id": run_id,
                "recorded_at": datetime.datetime.now(datetime.UTC),
            }
            for s in skipped
        ],
        columns=["asset", "part", "reason", "run_id", "recorded_at"],
    )
    with transaction(con):
        con.execute("delete from ops.skipped_parts where asset = ?", [name])
        if not rows.empty:
            insert_frame(con, "ops.skipped_parts", rows)


def current(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every asset's skipped parts as of its latest materialization (``asset, part, reason``)."""
    if not table_exists(con, "ops", "skipped_parts"):
        return pd.DataFrame(columns=["asset", "part", "reason"])
    return con.execute("select asset, part, reason from ops.skipped_parts order by asset, part").df()
