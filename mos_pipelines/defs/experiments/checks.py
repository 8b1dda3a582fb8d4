"""Checks on the experiments tables: valid allocations (blocking) and a holdout that is never treated."""

import dagster as dg

from mos_pipelines.configuration import load_experiments as load_config
from mos_pipelines.defs._common import md_list, warehouse_check
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.experiments import allocation_tables
from mos_pipelines.experiments.validation import allocation_problems, budget_problems, holdout_contamination


def _problems_result(mos: MosHome, find_problems) -> dg.AssetCheckResult:
    """Passes when ``find_problems(con, config)`` over the experiments tables finds none."""
    config = load_config()
    with mos.connect() as con:
        allocation_tables.ensure_tables(con)
        problems = find_problems(con, config)
    return dg.AssetCheckResult(passed=not problems, metadata={"problems": len(problems), "details": md_list(problems)})


@warehouse_check(
    asset=["experiments", "bandit_allocations"],
    name="allocation_within_guard_rails",
    blocking=True,
    description=(
        "Latest allocation of every experiment × segment: shares sum to 1, every arm keeps the exploration floor, "
        "no share moved more than the daily cap × days since the previous allocation. Blocking: assignments are "
        "not rewritten from an invalid allocation."
    ),
)
def allocation_within_guard_rails(mos: MosHome) -> dg.AssetCheckResult:
    return _problems_result(mos, lambda con, config: allocation_problems(con, config.bandit))


@warehouse_check(
    asset=["experiments", "assignments"],
    name="holdout_never_treated",
    description=(
        "No holdout unit was sent an email of its experiment on or after the day it was first assigned. A failure "
        "means activation does not honour the holdout, and lift against it is no longer measurable."
    ),
)
def holdout_never_treated(mos: MosHome) -> dg.AssetCheckResult:
    with mos.connect() as con:
        allocation_tables.ensure_tables(con)
        found = holdout_contamination(con)
        members = con.execute("select count(*) from experiments.assignments where is_holdout").fetchall()[0][0]
    examples = [f"{r.experiment_id}: {r.unit_id} (first send {r.first_event_at})" for r in found.head(20).itertuples()]
    return dg.AssetCheckResult(
        passed=found.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"holdout_units": int(members), "treated_holdout_units": len(found), "examples": md_list(examples)},
    )


@warehouse_check(
    asset=["experiments", "budget_allocations"],
    name="budget_within_bounds",
    blocking=True,
    description="Latest budget allocation: shares sum to 1, budgets to the total, every channel within its bounds.",
)
def budget_within_bounds(mos: MosHome) -> dg.AssetCheckResult:
    return _problems_result(mos, lambda con, config: budget_problems(con, config.budget))
