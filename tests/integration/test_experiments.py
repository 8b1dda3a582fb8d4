"""The experiments assets as real Dagster materializations on the small session world (issue 6)."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from mos_pipelines.configuration import load_experiments as load_config

from .conftest import World, use_home

pytestmark = pytest.mark.integration

EXPERIMENT_KEYS = [
    ["experiments", "bandit_allocations"],
    ["experiments", "assignments"],
    ["experiments", "budget_allocations"],
]


@pytest.fixture(scope="module")
def world(world_copy: World) -> World:
    """This module writes (it runs assets again): a private copy of the shared world."""
    return world_copy


def _tables(world: World) -> dict[str, pd.DataFrame]:
    with world.connect() as con:
        return {
            name: con.execute(f"select * from experiments.{name} order by all").df()
            for name in ("bandit_allocations", "assignments", "budget_allocations")
        }


@pytest.fixture(scope="module")
def first(world: World) -> dict[str, pd.DataFrame]:
    assert world.first_run.success, world.first_run.failures
    return _tables(world)


def test_full_build_materializes_the_experiments_assets_and_passes_their_checks(world: World, first):
    use_home(world.settings)
    instance = dg.DagsterInstance.get()
    for key in EXPERIMENT_KEYS:
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        assert event is not None and event.run_id == world.first_run.run_id, key
        assert event.asset_materialization.metadata["dagster/row_count"].value > 0
    checks = {
        r.event_log_entry.dagster_event.event_specific_data.check_name: r.event_log_entry.dagster_event.event_specific_data
        for r in instance.get_records_for_run(
            world.first_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    }
    for name in ("allocation_within_guard_rails", "holdout_never_treated", "budget_within_bounds"):
        assert checks[name].passed, name


def test_every_experiment_segment_is_allocated_within_the_guard_rails(world: World, first):
    allocations = first["bandit_allocations"]
    with world.connect() as con:
        campaigns = set(
            con.execute(
                "select distinct campaign_id from staging.stg_esp__email_events where campaign_id like 'em_%'"
            ).df()["campaign_id"]
        )
        last_email = con.execute("select max(occurred_at) from staging.stg_esp__email_events").fetchall()[0][0]
    assert set(allocations["experiment_id"]) == campaigns
    assert (pd.to_datetime(allocations["allocation_date"]).dt.date == (last_email.date() + pd.Timedelta(days=1))).all()
    shares = allocations.groupby(["experiment_id", "segment"])["new_share"].sum()
    assert np.allclose(shares, 1.0)
    assert allocations["ci_lower"].le(allocations["posterior_mean"]).all()
    assert allocations["posterior_mean"].le(allocations["ci_upper"]).all()
    assert set(allocations["reason"]) <= {"min_exposures", "thompson", "floor", "capped", "rebalanced"}
    # the first allocation starts from equal shares and moves at most the daily cap
    cap = load_config().bandit.max_daily_change
    assert (allocations["new_share"] - allocations["previous_share"]).abs().le(cap + 1e-9).all()
    assert np.allclose(
        allocations.groupby(["experiment_id", "segment"])["previous_share"].transform("size")
        * allocations["previous_share"],
        1.0,
    )


def test_assignments_cover_every_recipient_with_a_persistent_holdout(world: World, first):
    assignments = first["assignments"]
    with world.connect() as con:
        recipients = con.execute(
            "select distinct campaign_id as experiment_id, lower(trim(recipient_email)) as unit_id "
            "from staging.stg_esp__email_events where campaign_id like 'em_%'"
        ).df()
    merged = recipients.merge(assignments, on=["experiment_id", "unit_id"], how="left", indicator=True)
    assert (merged["_merge"] == "both").all()
    share = load_config().assignment.holdout_share
    for _, group in assignments.groupby("experiment_id"):
        assert abs(group["is_holdout"].mean() - share) < 4 * np.sqrt(share * (1 - share) / len(group))
    assert (assignments.loc[assignments["is_holdout"], "variant_id"] == "holdout").all()
    assert assignments.loc[~assignments["is_holdout"], "variant_id"].ne("holdout").all()


def test_budget_is_split_within_its_bounds_with_expected_returns(world: World, first):
    budget = first["budget_allocations"]
    config = load_config().budget
    assert set(budget["channel"]) == set(config.channels)
    assert budget["new_share"].sum() == pytest.approx(1.0) and budget["budget_usd"].sum() == pytest.approx(
        config.total_usd
    )
    low, high = config.bounds()
    bounds = dict(zip(config.channels, zip(low, high)))
    for row in budget.itertuples():
        assert bounds[row.channel][0] - 1e-9 <= row.new_share <= bounds[row.channel][1] + 1e-9
        assert row.expected_return_lower <= row.expected_return_usd <= row.expected_return_upper


def test_rerunning_the_experiments_assets_changes_nothing(world: World, first):
    outcome = world.run("group:experiments")
    assert outcome.success, outcome.failures
    assert outcome.materialized == 3 and outcome.checks_failed == 0
    again = _tables(world)
    for name, frame in first.items():
        pd.testing.assert_frame_equal(frame, again[name], check_like=True, obj=name)
