"""Lift calibration of the MMM: a measured lift for a channel, entered as a ``LiftTest``, pulls that channel's
posterior toward the lift and narrows it. Two small real fits (nutpie; about half a minute each on 2 loaded cores,
the first compile of a machine included)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mos_pipelines.mmm.data import weekly
from mos_pipelines.mmm.model import LiftTest, Settings, fit
from mos_pipelines.simulation.mmm_world import generate

FAST = Settings(draws=250, tune=250, min_ess=50.0)


def _predicted_lift(result, test: LiftTest) -> np.ndarray:
    """Draws of the lift the fitted curves predict for ``test`` (steady state, the channel's region mix)."""
    c = result.posterior.channels.index(test.channel)
    weekly_spend = np.zeros(len(result.posterior.channels))
    weekly_spend[c] = test.weekly_spend_usd
    return test.weeks * result.posterior.steady_weekly(weekly_spend)[:, c]


@pytest.fixture(scope="module")
def fits():
    world = generate(8, "flighted", weeks=52, n_regions=2, n_channels=3)
    data = weekly(world.spend, world.outcome.rename(columns={"revenue_usd": "value"}), min_weeks=8)
    plain = fit(data, FAST)
    # the channel the data pin down least, at its mean weekly spend (all regions) for 4 weeks
    roi = plain.channel_roi.set_index("channel")
    channel = str(((roi["roi_upper"] - roi["roi_lower"]) / roi["roi_mean"]).idxmax())
    c = data.channels.index(channel)
    probe = LiftTest(channel, float(data.spend[:, :, c].sum(axis=1).mean()), 4.0, 0.0, 1.0, "probe")
    predicted = _predicted_lift(plain, probe)
    # a lift 30 % above what the data alone say, measured four times as precisely
    test = dataclasses.replace(probe, lift=1.3 * predicted.mean(), lift_sd=0.25 * predicted.std(), source="test")
    calibrated = fit(data, FAST, [test])
    return plain, calibrated, test


def test_both_fits_converge(fits):
    plain, calibrated, _ = fits
    assert plain.converged, plain.convergence_problems()
    assert calibrated.converged, calibrated.convergence_problems()
    assert plain.lift_tests == [] and len(calibrated.lift_tests) == 1


def test_a_lift_moves_the_channel_toward_it_and_narrows_its_interval(fits):
    plain, calibrated, test = fits
    before, after = _predicted_lift(plain, test), _predicted_lift(calibrated, test)
    # the curve's prediction for the tested spend moves most of the way to the measured lift, and is surer
    assert abs(after.mean() - test.lift) < 0.5 * abs(before.mean() - test.lift)
    assert after.std() < before.std()
    roi_before = plain.channel_roi.set_index("channel").loc[test.channel]
    roi_after = calibrated.channel_roi.set_index("channel").loc[test.channel]
    # the measured lift is above what the data said: the channel's ROI rises, and its interval narrows
    assert roi_after["roi_mean"] > roi_before["roi_mean"]
    width = lambda r: r["roi_upper"] - r["roi_lower"]  # noqa: E731
    assert width(roi_after) < width(roi_before)


def test_holdout_lift_tests_read_the_holdout_mart_in_the_outcome_and_spend_of_the_model():
    """What the asset feeds the fit: a holdout on a modelled channel becomes a LiftTest (lift = (treated − holdout
    conversion rate) × treated units × mean revenue per order, spend per week of the campaign over its days);
    an experiment on a channel the model lacks, or with too few units, is named in the note instead."""
    import datetime

    import duckdb

    from mos_pipelines.mmm.data import WeeklyData
    from mos_pipelines.mmm.report import holdout_lift_tests

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_experiment_holdout as select * from (values "
        "('camp_a', false, 1000, 120, 30), ('camp_a', true, 200, 16, 30), "
        "('camp_b', false, 500, 50, 30), ('camp_b', true, 100, 5, 30), "
        "('camp_c', false, 20, 5, 30), ('camp_c', true, 10, 1, 30)) "
        "t(experiment_id, is_holdout, observed_units, converted_units, window_days)"
    )
    days = [datetime.date(2026, 3, 2) + datetime.timedelta(days=d) for d in range(14)]
    rows = [(d, "camp_a", "paid_social", 50.0) for d in days] + [(d, "camp_b", "tv", 10.0) for d in days]
    con.execute(
        "create table marts.fct_channel_performance (date_day date, campaign_id varchar, channel varchar, "
        "cost_usd double)"
    )
    con.executemany("insert into marts.fct_channel_performance values (?, ?, ?, ?)", rows)
    con.execute(
        "create table marts.fct_conversions as select * from (values ('order', 80.0), ('order', 120.0), "
        "('signup', 0.0)) t(conversion_type, revenue_usd)"
    )
    data = WeeklyData([], [], ["paid_search", "paid_social"], np.zeros((0, 0, 2)), np.zeros((0, 0)))
    tests, note = holdout_lift_tests(con, data)
    assert len(tests) == 1
    (t,) = tests
    assert t.channel == "paid_social" and t.weeks == pytest.approx(2.0) and t.weekly_spend_usd == pytest.approx(350.0)
    assert t.lift == pytest.approx((0.12 - 0.08) * 1000 * 100.0)  # mean order revenue 100
    sd = np.sqrt(0.12 * 0.88 / 1000 + 0.08 * 0.92 / 200) * 1000 * 100.0
    assert t.lift_sd == pytest.approx(sd) and t.source == "holdout of camp_a"
    assert "camp_b: no cost on a channel the MMM has" in note
    assert "camp_c: fewer than 30 observed units in an arm" in note
