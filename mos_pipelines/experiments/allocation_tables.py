"""Warehouse tables of the experiments capability (schema ``experiments``) and how they are written.

Allocations keep their history (one set of rows per allocation date; recomputing a date replaces
it, so a re-run is idempotent); assignments hold the current arm of every unit and the date it was
first assigned; simulation results one set of rows per closed-loop run.
"""

from __future__ import annotations

import datetime

import pandas as pd

from mos_pipelines.warehouse import insert_frame, transaction

DDL = """
create schema if not exists experiments;
create table if not exists experiments.assignments (
    experiment_id varchar not null,
    unit_id varchar not null,
    segment varchar not null,
    holdout_bucket double not null,
    arm_bucket double not null,
    is_holdout boolean not null,
    variant_id varchar not null,
    allocation_date date not null,
    first_assigned_date date not null,
    primary key (experiment_id, unit_id)
);
create table if not exists experiments.bandit_allocations (
    allocation_date date not null,
    experiment_id varchar not null,
    segment varchar not null,
    variant_id varchar not null,
    goal varchar not null,
    exposures bigint not null,
    successes double not null,
    value_usd double not null,
    prior_exposures double not null,
    posterior_alpha double not null,
    posterior_beta double not null,
    posterior_mean double not null,
    ci_lower double not null,
    ci_upper double not null,
    prob_best double not null,
    previous_share double not null,
    target_share double not null,
    new_share double not null,
    reason varchar not null,
    holdout_share double not null,
    days_since_previous integer not null,
    config_fingerprint varchar not null,
    primary key (allocation_date, experiment_id, segment, variant_id)
);
create table if not exists experiments.budget_allocations (
    allocation_date date not null,
    channel varchar not null,
    period_days integer not null,
    budget_total_usd double not null,
    lookback_start date not null,
    lookback_end date not null,
    cost_usd double not null,
    conversions double not null,
    revenue_usd double not null,
    return_per_dollar_mean double not null,
    roi_mean double not null,
    roi_lower double not null,
    roi_upper double not null,
    prob_best double not null,
    previous_share double not null,
    target_share double not null,
    new_share double not null,
    reason varchar not null,
    budget_usd double not null,
    expected_return_usd double not null,
    expected_return_lower double not null,
    expected_return_upper double not null,
    days_since_previous integer not null,
    config_fingerprint varchar not null,
    primary key (allocation_date, channel)
);
create table if not exists experiments.simulation_results (
    run_id varchar not null,
    scenario varchar not null,
    mode varchar not null,
    seed integer not null,
    people integer not null,
    day integer not null,
    date_day date not null,
    experiment_id varchar not null,
    region varchar not null,
    goal varchar not null,
    best_variant_id varchar not null,
    sends bigint not null,
    holdout_members bigint not null,
    best_arm_sends bigint not null,
    bandit_expected_reward double not null,
    uniform_expected_reward double not null,
    oracle_expected_reward double not null,
    bandit_regret double not null,
    uniform_regret double not null,
    realized_clicks bigint not null,
    primary key (run_id, day, experiment_id, region)
);
"""


def ensure_tables(con) -> None:
    con.execute(DDL)


def _replace(con, table: str, frame: pd.DataFrame, where: str, params: list) -> None:
    with transaction(con):
        con.execute(f"delete from {table} where {where}", params)
        if not frame.empty:
            insert_frame(con, table, frame)


def previous_allocations(con, before: datetime.date) -> pd.DataFrame:
    """The latest allocation before ``before`` of every experiment × segment."""
    return con.execute(
        """select * from experiments.bandit_allocations
        where allocation_date < ?
        qualify allocation_date = max(allocation_date) over (partition by experiment_id, segment)
        order by experiment_id, segment, variant_id""",
        [before],
    ).df()


def write_allocations(con, frame: pd.DataFrame, allocation_date: datetime.date) -> None:
    """Replace the allocation of that date."""
    _replace(con, "experiments.bandit_allocations", frame, "allocation_date = ?", [allocation_date])


def write_assignments(con, frame: pd.DataFrame, replace_experiments: list[str] | None = None) -> None:
    """Upsert assignment rows (a unit keeps its first_assigned_date). With ``replace_experiments``,
    units of those experiments not in ``frame`` are removed (the asset rewrites whole experiments)."""
    with transaction(con):
        con.register("_rows", frame)
        con.execute("""
            create or replace temp table _merged as
            select _rows.*, coalesce(least(old.first_assigned_date, _rows.allocation_date), _rows.allocation_date)
                as first_assigned
            from _rows left join experiments.assignments as old using (experiment_id, unit_id)
        """)
        con.unregister("_rows")
        if replace_experiments:
            con.execute("create or replace temp table _replace_experiments (experiment_id varchar)")
            con.executemany("insert into _replace_experiments values (?)", [[e] for e in replace_experiments])
            con.execute(
                "delete from experiments.assignments where experiment_id in "
                "(select experiment_id from _replace_experiments)"
            )
        else:
            con.execute(
                "delete from experiments.assignments where (experiment_id, unit_id) in "
                "(select (experiment_id, unit_id) from _merged)"
            )
        con.execute("""
            insert into experiments.assignments by name
            select experiment_id, unit_id, segment, holdout_bucket, arm_bucket, is_holdout, variant_id,
                allocation_date, first_assigned as first_assigned_date
            from _merged
        """)
        con.execute("drop table _merged")


def previous_budget(con, before: datetime.date) -> pd.DataFrame:
    return con.execute(
        """select * from experiments.budget_allocations
        where allocation_date = (select max(allocation_date) from experiments.budget_allocations
                                 where allocation_date < ?)""",
        [before],
    ).df()


def write_budget(con, frame: pd.DataFrame, allocation_date: datetime.date) -> None:
    _replace(con, "experiments.budget_allocations", frame, "allocation_date = ?", [allocation_date])


def write_simulation_results(con, frame: pd.DataFrame, run_id: str) -> None:
    _replace(con, "experiments.simulation_results", frame, "run_id = ?", [run_id])
