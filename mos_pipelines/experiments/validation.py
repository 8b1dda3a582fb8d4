"""Invariants of the experiments tables, checked after every materialization (Dagster asset checks)."""

from __future__ import annotations

import pandas as pd

from mos_pipelines.configuration.experiments import BanditSettings, BudgetSettings
from mos_pipelines.experiments import bandit

TOLERANCE = 1e-6


def allocation_problems(con, settings: BanditSettings) -> list[str]:
    """For the latest allocation of every experiment × segment: shares sum to 1, every arm keeps the
    floor, and no share moved by more than the daily cap × days since the previous allocation (an
    arm may exceed the cap only to reach the floor)."""
    rows = con.execute("""
        select * from experiments.bandit_allocations
        qualify allocation_date = max(allocation_date) over (partition by experiment_id, segment)
        order by experiment_id, segment, variant_id
    """).df()
    problems = []
    for (experiment_id, segment), group in rows.groupby(["experiment_id", "segment"]):
        where = f"{experiment_id} / {segment} on {pd.Timestamp(group['allocation_date'].iloc[0]).date()}"
        total = group["new_share"].sum()
        if abs(total - 1) > TOLERANCE:
            problems.append(f"{where}: shares sum to {total:.6f}")
        if (group["reason"] == bandit.MIN_EXPOSURES).all() or len(group) == 1:
            continue
        floor = min(settings.floor, 1 / len(group))
        for row in group.itertuples():
            if row.new_share < floor - TOLERANCE:
                problems.append(f"{where}: arm {row.variant_id} has {row.new_share:.4f} < floor {floor:g}")
            cap = settings.max_daily_change * row.days_since_previous
            moved = abs(row.new_share - row.previous_share)
            if moved > cap + TOLERANCE and abs(row.new_share - floor) > TOLERANCE:
                problems.append(f"{where}: arm {row.variant_id} moved {moved:.4f} > cap {cap:g}")
    return problems


def holdout_contamination(con, source_table: str = "staging.stg_esp__email_events") -> pd.DataFrame:
    """Holdout units that received any email of their experiment on or after the day they were first
    assigned (the holdout must never be treated). Email from before the first assignment is history."""
    event_type = "email_event_type" if source_table.startswith("staging.") else "event"
    return con.execute(f"""
        select a.experiment_id, a.unit_id, a.first_assigned_date, min(e.occurred_at) as first_event_at,
            count(*) as events
        from experiments.assignments as a
        inner join {source_table} as e
            on e.campaign_id = a.experiment_id and lower(trim(e.recipient_email)) = a.unit_id
            and cast(e.occurred_at as date) >= a.first_assigned_date
        where a.is_holdout and e.{event_type} = 'sent'
        group by all
        order by 1, 2
    """).df()


def budget_problems(con, settings: BudgetSettings) -> list[str]:
    """The latest budget allocation: shares sum to 1, budgets to the total, every channel within its
    floor/min/max share."""
    rows = con.execute("""
        select * from experiments.budget_allocations
        where allocation_date = (select max(allocation_date) from experiments.budget_allocations)
    """).df()
    if rows.empty:
        return []
    problems = []
    if abs(rows["new_share"].sum() - 1) > TOLERANCE:
        problems.append(f"shares sum to {rows['new_share'].sum():.6f}")
    total = rows["budget_total_usd"].iloc[0]
    if abs(rows["budget_usd"].sum() - total) > TOLERANCE * max(total, 1):
        problems.append(f"budgets sum to {rows['budget_usd'].sum():.2f}, not the total {total:.2f}")
    low, high = settings.bounds()
    bounds = dict(zip(settings.channels, zip(low, high)))
    for row in rows.itertuples():
        lo, hi = bounds.get(row.channel, (0.0, 1.0))
        if row.new_share < lo - TOLERANCE or row.new_share > hi + TOLERANCE:
            problems.append(f"{row.channel}: share {row.new_share:.4f} outside [{lo:g}, {hi:g}]")
    return problems
