"""The closed learning loop against the simulated world (``mos simulate``).

Every simulated day: build (ingest what landed) → allocate (bandit update on everything up to
yesterday) → assign today's audience (persistent holdout, arm by segment shares) → activation
stand-in: the world's ``respond`` answers the sends and writes the day's landing files → next day.

Two build modes:
- fast (default): the day's landing files of the sources the allocation reads (campaigns, consent,
  email, orders) are ingested by the real loader into ``raw``, and the bandit reads the raw tables
  (``outcomes.RAW``). Every other landing file stays in the landing zone for the next ``mos run``.
- full (``--full-build``): a real Dagster materialization of everything the experiments assets
  depend on, every day, and the bandit reads the dbt models (``outcomes.WAREHOUSE``), as the daily
  schedule would. Minutes per simulated day instead of a fraction of a second.

Scoring uses the world's truth and never feeds back into a decision: for every treated send, the
expected reward of the arm sent, of the truth's best arm for the recipient's true region (oracle) and
of the average arm (uniform allocation); regret = oracle − policy, summed.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mos_pipelines import warehouse
from mos_pipelines.configuration.experiments import ExperimentsSettings
from mos_pipelines.experiments import allocation_tables, daily
from mos_pipelines.experiments.outcomes import RAW, WAREHOUSE
from mos_pipelines.ingestion.loader import load_source
from mos_pipelines.simulation import WorldConfig
from mos_pipelines.simulation.world import SteppedWorld

FAST_SOURCES = ("campaigns", "consent", "email", "orders")
# everything the experiments assets read, and what it is built from (ml, insights and activation are not needed)
FULL_BUILD_SELECTION = "+key:experiments/bandit_allocations and not group:experiments"
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class LoopSettings:
    days: int = 30
    people: int = 2000
    seed: int = 7
    scenario: Path | None = None
    full_build: bool = False


@dataclass
class LoopResult:
    run_id: str
    scenario: str
    mode: str
    results: pd.DataFrame  # per day × experiment × true region
    summary: pd.DataFrame  # per experiment, plus a total row
    holdout_members: int
    holdout_violations: int  # holdout units with any email event of their experiment (must be 0)
    seconds: float

    @property
    def regret_ratio(self) -> float:
        total = self.summary[self.summary["experiment_id"] == "all"].iloc[0]
        return float(total["regret_ratio"])


def run_closed_loop(
    mos_home: Path, settings: LoopSettings, config: ExperimentsSettings, progress: Progress | None = None
) -> LoopResult:
    began = time.perf_counter()
    mos_home = Path(mos_home)
    world = SteppedWorld(
        WorldConfig(seed=settings.seed, people=settings.people, days=settings.days, scenario=settings.scenario),
        mos_home,
    )
    mode = "full" if settings.full_build else "fast"
    run_id = hashlib.sha256(
        f"{world.scenario.name}:{world.scenario.sha256}:{settings.seed}:{settings.people}:{settings.days}:{mode}:"
        f"{config.fingerprint()}".encode()
    ).hexdigest()[:12]
    rates = _goal_rates(world, config)
    true_region = world.true_regions()
    path = mos_home / "warehouse.duckdb"
    rows: list[pd.DataFrame] = []
    con = None
    try:
        for day in range(settings.days):
            date = world.start + datetime.timedelta(days=day)
            if progress:
                progress(day, settings.days, f"day {day} ({date})")
            # Day 0 has nothing to learn from (only campaigns.csv has landed), and the dbt project does not
            # build on an empty landing zone: full-build mode starts building on day 1.
            full = settings.full_build and day > 0
            source = WAREHOUSE if full else RAW
            if full:  # Dagster opens the warehouse itself: no connection held meanwhile
                if con is not None:
                    con.close()
                    con = None
                _full_build()
            con = con or warehouse.connect(path)
            if not full:
                _ingest(con, mos_home)
            update = daily.update_bandit(con, source, config, allocation_date=date)
            audience = world.audience(day).rename(columns={"campaign_id": "experiment_id"})
            assigned = daily.assign(
                con, source, config, update.experiments, update.allocations, audience, date, replace=False
            )
            sends = assigned.rename(columns={"experiment_id": "campaign_id"})[
                ["campaign_id", "recipient_email", "variant_id"]
            ]
            outcome = world.step(day, sends)
            rows.append(_score(day, date, assigned, outcome, rates, true_region, update.experiments))
        con = con or warehouse.connect(path)
        _ingest(con, mos_home)  # the last day's email too, so the holdout check sees everything sent
    finally:
        if con is not None:
            con.close()
        world.finish()
    if progress:
        progress(settings.days, settings.days, "done")
    results = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    results.insert(0, "run_id", run_id)
    results.insert(1, "scenario", world.scenario.name)
    results.insert(2, "mode", mode)
    results.insert(3, "seed", settings.seed)
    results.insert(4, "people", settings.people)
    con = warehouse.connect(path)
    try:
        allocation_tables.ensure_tables(con)
        allocation_tables.write_simulation_results(con, results, run_id)
        members, violations = holdout_violations(con)
    finally:
        con.close()
    return LoopResult(
        run_id,
        world.scenario.name,
        mode,
        results,
        summarise(results),
        members,
        violations,
        round(time.perf_counter() - began, 2),
    )


def _full_build() -> None:
    from mos_pipelines.runner import run_assets

    # a subset build: dbt's default (eager) would also pick tests that read models outside the selection
    previous = os.environ.get("DBT_INDIRECT_SELECTION")
    os.environ["DBT_INDIRECT_SELECTION"] = "cautious"
    try:
        outcome = run_assets(FULL_BUILD_SELECTION)
    finally:
        if previous is None:
            os.environ.pop("DBT_INDIRECT_SELECTION", None)
        else:
            os.environ["DBT_INDIRECT_SELECTION"] = previous
    if not outcome.success:
        raise RuntimeError(f"closed loop: the daily build failed ({'; '.join(outcome.failures)})")


def _ingest(con, mos_home: Path) -> None:
    for source in FAST_SOURCES:
        load_source(con, source, mos_home / "landing")


def _goal_rates(world: SteppedWorld, config: ExperimentsSettings) -> pd.DataFrame:
    """True expected reward of one treated send per campaign × variant × region, for the campaign's goal:
    P(delivered) × click rate, × the conversion rate of a click-through visit for conversion goals."""
    arm = world.arm_rates()
    objectives = {c.campaign_id: c.objective for c in world.scenario.email_campaigns}
    goal = arm["campaign_id"].map(lambda c: config.goal_for(c, objectives.get(c)))
    delivered = 1 - world.bounce_rate()
    reward = delivered * arm["click_rate"] * np.where(goal == "click", 1.0, arm["conversion_rate"])
    return arm.assign(goal=goal, reward=reward)[["campaign_id", "variant_id", "region", "goal", "reward"]]


def _score(
    day: int,
    date: datetime.date,
    assigned: pd.DataFrame,
    outcome: pd.DataFrame,
    rates: pd.DataFrame,
    true_region: pd.Series,
    experiments,
) -> pd.DataFrame:
    if assigned.empty:
        return pd.DataFrame()
    frame = assigned.assign(region=assigned["recipient_email"].map(true_region))
    table = rates.set_index(["campaign_id", "region", "variant_id"])["reward"].sort_index()
    out = []
    known = {e.experiment_id: e for e in experiments}
    for (experiment_id, region), rows in frame.groupby(["experiment_id", "region"], sort=True):
        experiment = known[experiment_id]
        arm_rewards = table.loc[(experiment_id, region)].reindex(list(experiment.variants))
        treated = rows[~rows["is_holdout"]]
        chosen = arm_rewards.reindex(treated["variant_id"]).to_numpy()
        best = arm_rewards.idxmax()
        clicks = outcome[
            (outcome["campaign_id"] == experiment_id) & (outcome["region"] == region) & ~outcome["is_holdout"]
        ]["clicked"].sum()
        oracle = len(treated) * arm_rewards.max()
        bandit_reward = float(np.nansum(chosen))
        uniform = len(treated) * arm_rewards.mean()
        out.append(
            {
                "day": day,
                "date_day": date,
                "experiment_id": experiment_id,
                "region": region,
                "goal": rates.loc[rates["campaign_id"] == experiment_id, "goal"].iloc[0],
                "best_variant_id": best,
                "sends": len(treated),
                "holdout_members": int(rows["is_holdout"].sum()),
                "best_arm_sends": int((treated["variant_id"] == best).sum()),
                "bandit_expected_reward": bandit_reward,
                "uniform_expected_reward": float(uniform),
                "oracle_expected_reward": float(oracle),
                "bandit_regret": float(np.nansum(arm_rewards.max() - chosen)),  # per send, so never below 0
                "uniform_regret": float(len(treated) * (arm_rewards.max() - arm_rewards.mean())),
                "realized_clicks": int(clicks),
            }
        )
    return pd.DataFrame(out)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and overall: sends, expected rewards, cumulative regrets and their ratio."""
    if results.empty:
        return pd.DataFrame(columns=["experiment_id"])
    metrics = [
        "sends",
        "best_arm_sends",
        "bandit_expected_reward",
        "uniform_expected_reward",
        "oracle_expected_reward",
        "bandit_regret",
        "uniform_regret",
        "realized_clicks",
    ]
    per = results.groupby("experiment_id", as_index=False)[metrics].sum()
    total = results[metrics].sum().to_frame().T.assign(experiment_id="all")
    summary = pd.concat([per, total], ignore_index=True)
    summary["regret_ratio"] = summary["bandit_regret"] / summary["uniform_regret"].where(
        summary["uniform_regret"] > 1e-9
    )
    summary["best_arm_share"] = summary["best_arm_sends"] / summary["sends"].where(summary["sends"] > 0)
    return summary


def holdout_violations(con) -> tuple[int, int]:
    """Holdout units, and how many of them have any email event of their experiment in raw.email."""
    members = int(warehouse.scalar(con, "select count(*) from experiments.assignments where is_holdout"))
    if not warehouse.table_exists(con, "raw", "email"):
        return members, 0
    violations = int(
        warehouse.scalar(
            con,
            """
        select count(distinct (a.experiment_id, a.unit_id))
        from experiments.assignments as a
        inner join raw.email as e
            on e.campaign_id = a.experiment_id and lower(trim(e.recipient_email)) = a.unit_id
        where a.is_holdout
    """,
        )
    )
    return members, violations
