"""Decorators shared by the Python assets and checks that read and write the DuckDB warehouse.

Every such asset is in the warehouse pool (DuckDB has one writer at a time) and declares its upstream
tables as ``[schema, table]`` keys; these two decorators say that once, so each asset module only states
what is its own: key, group, owner, upstream tables, description.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import duckdb

from mos_pipelines import skipped
from mos_pipelines.gcpause import with_collector_paused
from mos_pipelines.settings import WAREHOUSE_POOL

WAREHOUSE_KINDS = frozenset({"python", "duckdb"})


def warehouse_asset(
    *,
    key: Sequence[str],
    group: str,
    owner: str,
    description: str,
    deps: Sequence[Sequence[str]] = (),
    kinds: frozenset[str] = WAREHOUSE_KINDS,
    parts: str | None = None,
):
    """``@dg.asset`` for a Python asset in the warehouse pool; ``deps`` are ``[schema, table]`` keys.

    ``parts`` names what the asset is made of ("audiences", "channels") when it computes each part on its
    own and skips one it cannot compute; it adds the warning check ``all_parts_computed`` (never blocking),
    which ``partial_result`` evaluates."""
    check_specs = None
    if parts:
        check_specs = [
            dg.AssetCheckSpec(
                PARTS_CHECK,
                asset=dg.AssetKey(list(key)),
                blocking=False,
                description=(
                    f"Warns when some {parts} could not be computed in the latest materialization; the "
                    "reason for each is in the check's metadata, `ops.skipped_parts` and `mos summary`. "
                    "The parts that could be computed were, and downstream assets run on them."
                ),
            )
        ]
    asset = dg.asset(
        key=list(key),
        group_name=group,
        kinds=set(kinds),
        owners=[owner],
        pool=WAREHOUSE_POOL,
        deps=[dg.AssetKey(list(dep)) for dep in deps],
        description=description,
        check_specs=check_specs,
    )
    return lambda fn: asset(
        with_collector_paused(fn)
    )  # mos_pipelines.gcpause: the collector cost a quarter of the time


PARTS_CHECK = "all_parts_computed"


def partial_result(
    context: dg.AssetExecutionContext,
    con: duckdb.DuckDBPyConnection,
    metadata: Mapping[str, Any],  # values dagster takes as metadata
    skipped_parts: Sequence[skipped.SkippedPart],
) -> dg.MaterializeResult:
    """The materialization of an asset declared with ``parts``: records the skipped parts in
    ``ops.skipped_parts``, lists them in the metadata and evaluates ``all_parts_computed`` (a warning)."""
    key = context.asset_key
    skipped.record(con, key.path, skipped_parts, context.run_id)
    lines = [s.line() for s in skipped_parts]
    for line in lines:
        context.log.warning(f"skipped {line}")
    listed = md_list(lines)
    return dg.MaterializeResult(
        metadata={**metadata, "skipped_parts": listed},
        check_results=[
            dg.AssetCheckResult(
                asset_key=key,
                check_name=PARTS_CHECK,
                passed=not skipped_parts,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"skipped": len(lines), "reasons": listed},
            )
        ],
    )


def warehouse_check(*, asset: Sequence[str], name: str, description: str, blocking: bool = False):
    """``@dg.asset_check`` on the asset ``[schema, table]``, run in the warehouse pool."""
    check = dg.asset_check(
        asset=dg.AssetKey(list(asset)),
        name=name,
        blocking=blocking,
        pool=WAREHOUSE_POOL,
        description=description,
    )
    return lambda fn: check(with_collector_paused(fn))


def md_list(items: Sequence[str], empty: str = "none", limit: int = 50) -> dg.MetadataValue:
    """The first ``limit`` items as a markdown bullet list (``empty`` when there are none)."""
    return dg.MetadataValue.md("\n".join(f"- {item}" for item in items[:limit]) or empty)
