"""What the warehouse holds, for `mos summary` and the end of `make demo`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from mos_pipelines import skipped
from mos_pipelines.warehouse import SCHEMAS, first_row, scalar, table_exists


@dataclass(frozen=True)
class IngestionRow:
    source: str
    files: int
    unreadable: int
    rows_loaded: int
    rows_quarantined: int


@dataclass(frozen=True)
class GateRow:
    check_name: str
    asset: str
    passed: bool
    observed: float | None
    threshold: str
    run_id: str


@dataclass
class WarehouseSummary:
    layers: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # schema -> (tables, views, rows in tables)
    ingestion: list[IngestionRow] = field(default_factory=list)
    top_quarantine_reasons: list[tuple[str, str, int]] = field(default_factory=list)
    highlights: list[str] = field(default_factory=list)
    gates: list[GateRow] = field(default_factory=list)  # latest result of each quality gate
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (asset, part, reason) not computed


def _identity_highlights(con: duckdb.DuckDBPyConnection, truth_file: Path | None) -> list[str]:
    known, anonymous, crm, devices = con.execute(
        """with per_customer as (
               select customer_id,
                      count(*) filter (where node_type in ('crm', 'user', 'order')) > 0 as is_known,
                      count(*) filter (where node_type = 'crm') as crm,
                      count(*) filter (where node_type = 'anon') as devices
               from marts.dim_customer_identity_map group by 1)
           select count(*) filter (where is_known), count(*) filter (where not is_known), sum(crm), sum(devices)
           from per_customer"""
    ).fetchall()[0]
    lines = [
        f"{known:,} known customers (CRM, sign-up or order) and {anonymous:,} anonymous visitors, "
        f"resolved from {crm:,} CRM records and {devices:,} devices"
    ]
    if truth_file is not None and truth_file.exists():
        from mos_pipelines.identity.truth_eval import evaluate_identity

        scores = evaluate_identity(con, truth_file, crm_only=True).clusters
        assert scores is not None  # evaluate() always scores the clusters
        lines.append(
            f"CRM deduplication vs the simulator's truth: precision {scores.pairs.precision:.3f}, "
            f"recall {scores.pairs.recall:.3f}, F1 {scores.pairs.f1:.3f}; largest customer "
            f"{scores.largest_predicted_cluster} records (largest true person {scores.largest_true_entity})"
        )
    return lines


def _decisions_highlight(con: duckdb.DuckDBPyConnection) -> str:
    """The latest decision day's next best actions, e.g. 'next best action on 2026-03-02: 171 nurture email, …'."""
    rows = con.execute(
        """select decision_date, action, count(*), count(*) filter (where is_holdout)
           from decisions.next_best_action
           where decision_date = (select max(decision_date) from decisions.next_best_action)
           group by all order by 3 desc"""
    ).fetchall()
    if not rows:
        return "next best action: no decision yet"
    acting = ", ".join(f"{n:,} {action.replace('_', ' ')}" for _, action, n, _ in rows if action != "no_action")
    idle = sum(n for _, action, n, _ in rows if action == "no_action")
    holdout = sum(h for *_, h in rows)
    return (
        f"next best action on {rows[0][0]}: {acting or 'no action for anyone'}; no action for {idle:,} "
        f"({holdout:,} of them the decisioning holdout)"
    )


def warehouse_summary(con: duckdb.DuckDBPyConnection, truth_file: Path | None = None) -> WarehouseSummary:
    """Rows per layer, ingestion counts and a few facts about the built marts (and identity quality
    against ``truth_file`` when there is one)."""
    found = WarehouseSummary()
    relations = con.execute(
        "select table_schema, table_name, table_type = 'VIEW' from information_schema.tables "
        "where table_schema in (select unnest(?)) order by 1, 2",
        [list(SCHEMAS)],
    ).fetchall()
    for schema in SCHEMAS:
        tables = [t for s, t, view in relations if s == schema and not view]
        views = sum(1 for s, _, view in relations if s == schema and view)
        if tables or views:
            # a view's rows are its tables' rows, and counting them runs its query (3 s a summary at 100k people)
            rows = sum(scalar(con, f'select count(*) from "{schema}"."{t}"') for t in tables)
            found.layers[schema] = (len(tables), views, rows)
    if table_exists(con, "ops", "file_ledger"):
        for row in con.execute(
            "select source, count(*) filter (where status = 'loaded'), count(*) filter (where status = 'unreadable'), "
            "sum(rows_loaded), sum(rows_quarantined) from ops.file_ledger group by 1 order by 1"
        ).fetchall():
            found.ingestion.append(IngestionRow(*row))
    if table_exists(con, "raw", "quarantine"):
        found.top_quarantine_reasons = con.execute(
            "select source, regexp_replace(reason, '^field ([^:]+): .* is ', 'field \\1 is '), count(*) "
            "from raw.quarantine group by 1, 2 order by 3 desc limit 5"
        ).fetchall()
    if table_exists(con, "marts", "fct_sessions"):
        n, devices = first_row(con, "select count(*), count(distinct device_key) from marts.fct_sessions")
        found.highlights.append(f"{n:,} sessions from {devices:,} devices (30-minute inactivity rule)")
    if table_exists(con, "marts", "fct_orders"):
        n, revenue = first_row(
            con, "select count(*), coalesce(sum(amount) filter (where is_completed), 0) from marts.fct_orders"
        )
        found.highlights.append(f"{n:,} orders, {revenue:,.0f} completed revenue (mixed currencies)")
    if table_exists(con, "marts", "fct_ad_spend_daily"):
        spend, platforms = first_row(
            con, "select coalesce(sum(spend), 0), count(distinct platform) from marts.fct_ad_spend_daily"
        )
        found.highlights.append(f"{spend:,.0f} ad spend across {platforms} platforms")
    if table_exists(con, "marts", "dim_customer_identity_map"):
        found.highlights.extend(_identity_highlights(con, truth_file))
    if table_exists(con, "decisions", "next_best_action"):
        found.highlights.append(_decisions_highlight(con))
    if table_exists(con, "ops", "quality_results"):
        found.gates = [
            GateRow(*row)
            for row in con.execute(
                "select check_name, asset, passed, observed, threshold, run_id from ops.quality_results "
                "qualify row_number() over (partition by check_name, asset order by evaluated_at desc) = 1 "
                "order by asset, check_name"
            ).fetchall()
        ]
    found.skipped = [tuple(row) for row in skipped.current(con).itertuples(index=False)]
    return found
