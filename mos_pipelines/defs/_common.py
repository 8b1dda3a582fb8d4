"""Decorators shared by the Python assets and checks that read and write the DuckDB warehouse.

Every such asset is in the warehouse pool (DuckDB has one writer at a time) and declares its upstream
tables as ``[schema, table]`` keys; these two decorators say that once, so each asset module only states
what is its own: key, group, owner, upstream tables, description.
"""

from collections.abc import Sequence

import dagster as dg

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
):
    """``@dg.asset`` for a Python asset in the warehouse pool; ``deps`` are ``[schema, table]`` keys."""
    return dg.asset(
        key=list(key),
        group_name=group,
        kinds=set(kinds),
        owners=[owner],
        pool=WAREHOUSE_POOL,
        deps=[dg.AssetKey(list(dep)) for dep in deps],
        description=description,
    )


def warehouse_check(*, asset: Sequence[str], name: str, description: str, blocking: bool = False):
    """``@dg.asset_check`` on the asset ``[schema, table]``, run in the warehouse pool."""
    return dg.asset_check(
        asset=dg.AssetKey(list(asset)),
        name=name,
        blocking=blocking,
        pool=WAREHOUSE_POOL,
        description=description,
    )


def md_list(items: Sequence[str], empty: str = "none", limit: int = 50) -> dg.MetadataValue:
    """The first ``limit`` items as a markdown bullet list (``empty`` when there are none)."""
    return dg.MetadataValue.md("\n".join(f"- {item}" for item in items[:limit]) or empty)
