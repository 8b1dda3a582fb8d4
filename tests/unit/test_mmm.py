"""Marketing mix model: the curves, the weekly world's truth, the data checks and the budget optimizer (no PyMC
here; the fit itself is in tests/integration/test_mmm.py)."""

from __future__ import annotations

import dataclasses
import datetime

import numpy as np
import pandas as pd
import pytest

from mos_pipelines.mmm.curves import adstock_weights, geometric_adstock, logistic_saturation
from mos_pipelines.mmm.data import NotEnoughData, weekly
from mos_pipelines.mmm.model import Posterior
from mos_pipelines.mmm.optimize import InfeasibleBounds, evaluate, optimize
from mos_pipelines.simulation.mmm_world import generate


def test_geometric_adstock_by_hand():
    w = adstock_weights(0.5, l_max=3)
    assert np.allclose(w, np.array([1, 0.5, 0.25]) / 1.75)
    x = np.array([1.0, 0.0, 0.0, 0.0, 2.0])
    out = geometric_adstock(x, 0.5, l_max=3)
    assert np.allclose(out, np.array([1, 0.5, 0.25, 0, 2]) / 1.75)
    # per channel decays broadcast over the last axis; a constant spend is its own steady state
    cube = np.ones((10, 2, 3))
    out = geometric_adstock(cube, np.array([0.1, 0.5, 0.9]))
    assert out.shape == (10, 2, 3) and np.allclose(out[8:], 1.0) and out[0, 0, 2] < out[0, 0, 0] < 1


def test_logistic_saturation():
    assert logistic_saturation(0.0, 3.0) == 0.0
    x = np.linspace(0, 5, 50)
    y = logistic_saturation(x, 2.0)
    assert np.all(np.diff(y) > 0) and np.all(np.diff(y, 2) < 0) and y[-1] < 1
    assert logistic_saturation(1e-6, 2.0) == pytest.approx(1e-6, rel=1e-3)  # slope λ/2 at 0
    assert logistic_saturation(np.log(3), 1.0) == pytest.approx(0.5)


def test_weekly_world_truth_is_consistent_and_seeded():
    a, b = (
        generate(3, "flighted", weeks=30, n_regions=2, n_channels=3),
        generate(3, "flighted", weeks=30, n_regions=2, n_channels=3),
    )
    pd.testing.assert_frame_equal(a.spend, b.spend)
    pd.testing.assert_frame_equal(a.outcome, b.outcome)
    assert not a.spend.equals(generate(4, "flighted", weeks=30, n_regions=2, n_channels=3).spend)
    cube = a.cube()
    assert cube.shape == (30, 2, 3)
    contrib = a.channel_contribution(cube)
    t = a.truth.set_index("channel")
    assert np.allclose(contrib.sum(axis=(0, 1)), t["contribution_usd"])
    assert np.allclose(a.contributions.groupby("channel", sort=False)["contribution_usd"].sum(), t["contribution_usd"])
    assert np.allclose(t["roi"], t["contribution_usd"] / t["spend_usd"])
    # saturating curves: the next dollar returns less than the average dollar
    assert (t["marginal_roi"] < t["roi"]).all() and (t["marginal_roi"] > 0).all()
    steady = generate(3, "steady", weeks=30, n_regions=2, n_channels=3)
    assert (steady.spend["spend_usd"] > 0).all()  # always on; flighted has weeks off
    assert (a.spend["spend_usd"] == 0).any()
    with pytest.raises(ValueError, match="regime 'bursty'"):
        generate(1, "bursty")


def _frames(weeks: int, channels: list[str], regions=("EU", "NA")):
    start = datetime.date(2025, 1, 6)
    rows, out = [], []
    g = np.random.default_rng(0)
    for w in range(weeks):
        d = start + datetime.timedelta(weeks=w)
        for r in regions:
            out.append({"week_start": d, "region": r, "value": 1000 + g.normal(0, 10)})
            for c in channels:
                rows.append({"week_start": d, "region": r, "channel": c, "spend_usd": float(g.uniform(10, 100))})
    return pd.DataFrame(rows), pd.DataFrame(out)


def test_weekly_data_skips_with_reasons():
    spend, outcome = _frames(10, ["search", "social"])
    with pytest.raises(NotEnoughData, match="10 complete week"):
        weekly(spend, outcome, min_weeks=26)
    spend, outcome = _frames(30, ["search"])
    with pytest.raises(NotEnoughData, match="1 channel"):
        weekly(spend, outcome)
    spend, outcome = _frames(30, ["search", "social", "tv"])
    spend.loc[(spend["channel"] == "tv") & (spend["week_start"] > spend["week_start"].min()), "spend_usd"] = 0.0
    spend.loc[0, "spend_usd"] = -5.0
    days = pd.DataFrame({"week_start": sorted(outcome["week_start"].unique()), "days": 7})
    days.loc[days.index[-1], "days"] = 3  # the last week is partial
    data = weekly(spend, outcome, days)
    assert data.channels == ["search", "social"] and data.regions == ["EU", "NA"]
    assert data.spend.shape == (29, 2, 2) and data.outcome.shape == (29, 2)
    reasons = dict(data.left_out)
    assert "spend in 1 of 29 weeks" in reasons["tv"]
    assert "1 rows with a missing or negative spend_usd" in reasons["spend rows"]
    assert "1 incomplete week" in reasons["weeks"]
    # a complete week without a single outcome row is a week of zeros, not a gap
    quiet = sorted(outcome["week_start"].unique())[5]
    data = weekly(spend, outcome[outcome["week_start"] != quiet], days)
    assert len(data.weeks) == 29 and (data.outcome[data.weeks.index(quiet)] == 0).all()
    with pytest.raises(ValueError, match="missing column"):
        weekly(spend.drop(columns="spend_usd"), outcome)


def _truth_posterior(world, data) -> Posterior:
    """The simulator's curves as a one-draw posterior (λ = 1 on spend / scale)."""
    t = world.truth.set_index("channel").loc[data.channels]
    one = lambda v: np.asarray(v, dtype=float)[None, :]  # noqa: E731
    return Posterior(
        data.channels,
        data.regions,
        one(t["alpha"]),
        one(np.ones(len(t))),
        one(t["beta_usd"]),
        t["scale_usd"].to_numpy(),
        data.region_mix(),
    )


def test_optimizer_respects_bounds_and_beats_an_even_split_on_known_curves():
    world = generate(2, "flighted", weeks=30, n_regions=2, n_channels=4)
    data = weekly(world.spend, world.outcome.rename(columns={"revenue_usd": "value"}), min_weeks=8)
    post = _truth_posterior(world, data)
    budget, weeks = float(data.spend.sum()) / 30 * 13, 13
    even = np.full(4, 0.25)
    lo, hi = np.array([0.1, 0.05, 0.2, 0.05]), np.array([0.5, 0.3, 0.6, 0.4])
    split = optimize(post, budget, weeks, lo, hi)
    assert abs(split.shares.sum() - 1) < 1e-9
    assert (split.shares >= lo - 1e-9).all() and (split.shares <= hi + 1e-9).all()
    assert split.expected > evaluate(post, even, budget, weeks)[0]
    # in the truth (the world's own steady state) too
    mix = data.region_mix()

    def truth(shares):
        return weeks * world.steady_outcome(((shares * budget / weeks)[:, None] * mix).T, data.channels)

    assert truth(split.shares) > truth(even)
    # no split within the bounds does better (the optimum of a concave objective)
    g = np.random.default_rng(1)
    for _ in range(200):
        s = g.dirichlet(np.ones(4))
        if (s >= lo).all() and (s <= hi).all():
            assert evaluate(post, s, budget, weeks)[0] <= split.expected + 1e-6
    # the change cap: at most ±0.05 from the previous split
    prev = np.array([0.3, 0.2, 0.3, 0.2])
    capped = optimize(post, budget, weeks, 0.0, 1.0, previous=prev, max_change=0.05)
    assert (np.abs(capped.shares - prev) <= 0.05 + 1e-9).all() and not capped.notes
    # a cap that cannot hold with the minimums is dropped with a note, the minimums hold
    forced = optimize(post, budget, weeks, np.array([0.6, 0.0, 0.0, 0.0]), 1.0, previous=prev, max_change=0.05)
    assert forced.shares[0] >= 0.6 - 1e-9 and "cannot hold" in forced.notes[0]
    with pytest.raises(InfeasibleBounds, match="min shares sum to 1.200"):
        optimize(post, budget, weeks, 0.3, 1.0)


def test_convergence_gate_names_each_problem():
    from mos_pipelines.mmm.model import FitResult, Settings, settings_from_env

    def result(**diag):
        base = {
            "max_rhat": 1.01,
            "worst_rhat_parameter": "trend",
            "min_ess_bulk": 400.0,
            "worst_ess_parameter": "sigma",
            "divergences": 0.0,
            "samples": 1000.0,
        }
        return FitResult(None, Settings(), None, 1.0, {**base, **diag}, None, None, None, None, None)  # type: ignore[arg-type]

    assert result().converged
    bad = result(max_rhat=1.2, min_ess_bulk=40.0, divergences=30.0)
    assert not bad.converged
    assert bad.convergence_problems() == [
        "r-hat 1.200 > 1.05 (trend)",
        "bulk ESS 40 < 100 (sigma)",
        "30 divergent transitions of 1000 (> 1 %)",
    ]
    assert result(divergences=10.0).converged  # 1 % allowed
    assert settings_from_env({"MOS_MMM_DRAWS": "120", "MOS_MMM_MIN_ESS": "50"}) == Settings(draws=120, min_ess=50.0)
    with pytest.raises(ValueError, match="MOS_MMM_CHAINS='two'"):
        settings_from_env({"MOS_MMM_CHAINS": "two"})
    assert settings_from_env({"MOS_MMM_SAMPLER": "pymc"}).sampler == "pymc" and Settings().sampler == "nutpie"
    with pytest.raises(ValueError, match="MOS_MMM_SAMPLER='stan'"):
        settings_from_env({"MOS_MMM_SAMPLER": "stan"})


def test_budget_split_on_fitted_curves_keeps_the_columns_and_bounds():
    from mos_pipelines.configuration import load_experiments
    from mos_pipelines.experiments.budget import BUDGET_COLUMNS, allocate_budget_mmm

    settings = load_experiments().budget
    world = generate(6, "flighted", weeks=30, n_regions=2, n_channels=len(settings.channels))
    rename = dict(zip(world.truth["channel"], settings.channels))
    data = weekly(
        world.spend.replace({"channel": rename}), world.outcome.rename(columns={"revenue_usd": "value"}), min_weeks=8
    )
    world.truth["channel"] = world.truth["channel"].map(rename)
    world.channels = [dataclasses.replace(c, channel=rename[c.channel]) for c in world.channels]
    post = _truth_posterior(world, data)
    totals = pd.DataFrame(
        {"channel": list(settings.channels), "cost_usd": 100.0, "conversions": 5.0, "revenue_usd": 300.0}
    )
    previous = pd.DataFrame(
        {
            "channel": list(settings.channels),
            "new_share": 1 / len(settings.channels),
            "allocation_date": [datetime.date(2026, 1, 1)] * len(settings.channels),
        }
    )
    rows, summary = allocate_budget_mmm(
        totals, previous, settings, datetime.date(2026, 1, 2), datetime.date(2026, 1, 1), post, "truth"
    )
    assert list(rows.columns) == BUDGET_COLUMNS and summary["method"] == "mmm"
    low, high = settings.bounds()
    assert rows["new_share"].sum() == pytest.approx(1.0)
    assert (rows["new_share"] >= np.asarray(low) - 1e-9).all() and (rows["new_share"] <= np.asarray(high) + 1e-9).all()
    assert (np.abs(rows["new_share"] - rows["previous_share"]) <= settings.max_daily_change + 1e-9).all()
    even = evaluate(
        post, np.full(len(settings.channels), 1 / len(settings.channels)), settings.total_usd, settings.period_days / 7
    )
    assert summary["expected_return_usd"] >= even[0]
    assert summary["expected_return_lower"] <= summary["expected_return_usd"] <= summary["expected_return_upper"]


def test_channels_whose_roi_interval_spans_more_than_20x_are_unidentified():
    import duckdb

    from mos_pipelines.mmm.tables import unidentified_channels

    con = duckdb.connect()
    assert unidentified_channels(con, ("search",)) == []  # no fit yet
    con.execute("create schema ml")
    con.execute(
        "create table ml.mmm_channel_roi as select * from (values ('search', 1.0, 8.0), ('social', 0.5, 24.9), "
        "('tv', 0.0, 3.0), ('email', 65.8, 4293.6)) t(channel, roi_lower, roi_upper)"
    )
    assert unidentified_channels(con, ("search", "social", "tv")) == [
        "social ROI 0.50–24.90 (50×)",
        "tv ROI 0.00–3.00 (inf×)",
    ]  # email is not asked about
