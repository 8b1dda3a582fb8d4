"""The closed learning loop, 30 simulated days on two scenarios with different true winners (issue 6).

Fast mode: every day the world's landing files are ingested by the real loader into a real DuckDB
warehouse, the bandit allocates from the raw tables, today's audience is assigned, and the world's
respond(sends) writes the next landing files. 1,000 people keep each run to a few seconds per 10 days.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mos_pipelines import warehouse
from mos_pipelines.cli import app
from mos_pipelines.configuration import load_experiments as load_config
from mos_pipelines.simulation.closed_loop import LoopResult, LoopSettings, run_closed_loop
from mos_pipelines.simulation.scenario import DEFAULT_SCENARIO

pytestmark = pytest.mark.integration

SCENARIOS = {
    "experiment_b_wins": DEFAULT_SCENARIO.parent / "experiment_b_wins.yaml",
    "experiment_regional_winners": DEFAULT_SCENARIO.parent / "experiment_regional_winners.yaml",
}
DAYS, PEOPLE, SEED = 30, 1000, 8


@pytest.fixture(scope="module")
def loops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, LoopResult]]]:
    config = load_config()
    out = {}
    for name, path in SCENARIOS.items():
        home = tmp_path_factory.mktemp(name)
        out[name] = (
            home,
            run_closed_loop(home, LoopSettings(days=DAYS, people=PEOPLE, seed=SEED, scenario=path), config),
        )
    yield out


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_bandit_regret_is_at_most_30_percent_of_uniform(loops, scenario):
    _, result = loops[scenario]
    total = result.summary.set_index("experiment_id").loc["all"]
    assert total["uniform_regret"] > 0
    assert result.regret_ratio <= 0.30, result.summary.to_string()
    assert total["bandit_expected_reward"] > total["uniform_expected_reward"]
    assert set(result.results["day"]) == set(range(DAYS))


def test_the_two_scenarios_have_different_true_winners(loops):
    winners = {
        name: result.results.groupby("region")["best_variant_id"].first().to_dict()
        for name, (_, result) in loops.items()
    }
    assert set(winners["experiment_b_wins"].values()) == {"B"}
    assert winners["experiment_regional_winners"]["NA"] == "C" and winners["experiment_regional_winners"]["EU"] == "A"
    # in the last week the bandit sends most of each big segment's traffic to that segment's winner
    for name, (_, result) in loops.items():
        last_week = result.results[(result.results["day"] >= DAYS - 7) & (result.results["region"] == "NA")]
        assert last_week["best_arm_sends"].sum() / last_week["sends"].sum() > 0.85, name


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_holdout_member_ever_receives_a_treatment(loops, scenario):
    home, result = loops[scenario]
    assert result.holdout_members > 0 and result.holdout_violations == 0
    con = warehouse.connect(home / "warehouse.duckdb", read_only=True)
    try:
        holdout = con.execute("select experiment_id, unit_id from experiments.assignments where is_holdout").df()
        emailed = con.execute(
            "select distinct campaign_id as experiment_id, lower(trim(recipient_email)) as unit_id from raw.email"
        ).df()
    finally:
        con.close()
    assert holdout.merge(emailed, on=["experiment_id", "unit_id"]).empty
    # the world's own record: a holdout member is held out on every send day, and never sent anything
    truth = pd.read_parquet(home / "truth" / "email_sends.parquet")
    per_person = truth.groupby(["campaign_id", "person_id"])["is_holdout"].agg(["min", "max"])
    assert (per_person["min"] == per_person["max"]).all()
    assert not truth.loc[truth["is_holdout"], ["sent", "delivered", "clicked"]].any().any()
    assert truth["is_holdout"].mean() == pytest.approx(0.10, abs=0.03)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_daily_allocation_respects_floor_cap_and_sums_to_one(loops, scenario):
    home, _ = loops[scenario]
    config = load_config().bandit
    con = warehouse.connect(home / "warehouse.duckdb", read_only=True)
    try:
        allocations = con.execute("select * from experiments.bandit_allocations").df()
        results = con.execute("select * from experiments.simulation_results").df()
    finally:
        con.close()
    assert allocations["allocation_date"].nunique() == DAYS - 1  # day 0 has no data yet
    groups = allocations.groupby(["allocation_date", "experiment_id", "segment"])
    assert (groups["new_share"].sum() - 1).abs().max() < 1e-9
    moved = allocations[allocations["reason"] != "min_exposures"]
    assert (moved["new_share"] >= config.floor - 1e-9).all()
    assert (
        (moved["new_share"] - moved["previous_share"]).abs()
        <= config.max_daily_change * moved["days_since_previous"] + 1e-9
    ).all()
    assert len(results) > 0 and set(results["day"]) == set(range(DAYS))


def test_simulate_cli_prints_the_regret_table_and_refuses_a_used_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MOS_HOME", str(tmp_path / "home"))
    args = ["simulate", "--days", "4", "--people", "300", "--scenario", str(SCENARIOS["experiment_b_wins"])]
    runner = CliRunner()
    first = runner.invoke(app, args, terminal_width=240)
    assert first.exit_code == 0, first.output
    assert "em_subject_test" in first.output and "bandit / uniform regret" in first.output
    assert "Holdout:" in first.output and "0 ever sent an email" in first.output
    again = runner.invoke(app, args, terminal_width=240)
    assert again.exit_code == 2 and "--fresh" in again.output
    fresh = runner.invoke(app, [*args, "--fresh"], terminal_width=240)
    assert fresh.exit_code == 0, fresh.output
