"""What the warehouse holds, for `mos summary` and the end of `make demo`."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from mos_pipelines.warehouse import SCHEMAS, scalar


@dataclass(frozen=True)
class IngestionRow:
    source: str
    files: int
    unreadable: int
    rows_loaded: int
    rows_quarantined: int


@dataclass
class WarehouseSummary:
    layers: dict[str, tuple[int, int]] = field(default_factory=dict)  # schema -> (tables, rows)
    ingestion: list[IngestionRow] = field(default_factory=list)
    top_quarantine_reasons: list[tuple[str, str, int]] = field(default_factory=list)
    highlights: list[str] = field(default_factory=list)


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        scalar(con, 
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        )
    )


def warehouse_summary(con: duckdb.DuckDBPyConnection) -> WarehouseSummary:
    """Rows per layer, ingestion counts and a few facts about the built marts."""
    found = WarehouseSummary()
    relations = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in (select unnest(?)) order by 1, 2",
        [list(SCHEMAS)],
    ).fetchall()
    for schema in SCHEMAS:
        names = [t for s, t in relations if s == schema]
        if names:
            rows = sum(scalar(con, f'select count(*) from "{schema}"."{t}"') for t in names)
            found.layers[schema] = (len(names), rows)
    if _exists(con, "ops", "file_ledger"):
        for row in con.execute(
            "select source, count(*) filter (where status = 'loaded'), count(*) filter (where status = 'unreadable'), "
            "sum(rows_loaded), sum(rows_quarantined) from ops.file_ledger group by 1 order by 1"
        ).fetchall():
            found.ingestion.append(IngestionRow(*row))
    if _exists(con, "raw", "quarantine"):
        found.top_quarantine_reasons = con.execute(
            "select source, regexp_replace(reason, '^field ([^:]+): .* is ', 'field \\1 is '), count(*) "
            "from raw.quarantine group by 1, 2 order by 3 desc limit 5"
        ).fetchall()
    if _exists(con, "marts", "fct_sessions"):
        n, devices = con.execute("select count(*), count(distinct device_key) from marts.fct_sessions").fetchone()
        found.highlights.append(f"{n:,} sessions from {devices:,} devices (30-minute inactivity rule)")
    if _exists(con, "marts", "fct_orders"):
        n, revenue = con.execute(
            "select count(*), coalesce(sum(amount) filter (where is_completed), 0) from marts.fct_orders"
        ).fetchone()
        found.highlights.append(f"{n:,} orders, {revenue:,.0f} completed revenue (mixed currencies)")
    if _exists(con, "marts", "fct_ad_spend_daily"):
        spend, platforms = con.execute(
            "select coalesce(sum(spend), 0), count(distinct platform) from marts.fct_ad_spend_daily"
        ).fetchone()
        found.highlights.append(f"{spend:,.0f} ad spend across {platforms} platforms")
    return found
