"""The variant bandit's arithmetic: posteriors against closed forms, guard rails, determinism."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln

from mos_pipelines.configuration import DOMAINS, load_experiments
from mos_pipelines.experiments import bandit
from mos_pipelines.experiments.allocation import aggregate, allocate
from mos_pipelines.experiments.outcomes import Experiment

BANDIT = load_experiments(DOMAINS["experiments"].file).bandit  # the bundled settings, whatever the environment says


def BanditSettings(**changes):  # noqa: N802 - the bundled bandit settings with some changed
    return BANDIT.model_copy(update=changes)


DAY = datetime.date(2026, 2, 1)


def _rng() -> np.random.Generator:
    return bandit.seeded_rng(1, "test")


def test_beta_posterior_interval_matches_closed_form_quantiles():
    # Beta(1,1) prior: 1 success in 1 exposure -> Beta(2,1) with CDF x^2; 0 of 1 -> Beta(1,2) with CDF 1-(1-x)^2
    post = bandit.bernoulli_posterior(np.array([1, 0]), np.array([1, 1]), 1.0, 1.0, 1000, _rng())
    assert post.alpha.tolist() == [2.0, 1.0] and post.beta.tolist() == [1.0, 2.0]
    assert post.mean.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert post.lower[0] == pytest.approx(math.sqrt(0.025)) and post.upper[0] == pytest.approx(math.sqrt(0.975))
    assert post.lower[1] == pytest.approx(1 - math.sqrt(0.975)) and post.upper[1] == pytest.approx(1 - math.sqrt(0.025))


def test_posterior_mean_is_prior_plus_counts():
    post = bandit.bernoulli_posterior(np.array([7, 30]), np.array([50, 100]), 2.0, 3.0, 1000, _rng())
    assert post.alpha.tolist() == [9.0, 32.0] and post.beta.tolist() == [46.0, 73.0]
    assert post.mean.tolist() == pytest.approx([9 / 55, 32 / 105])


def test_daily_batches_give_the_same_posterior_as_one_update():
    rng = np.random.default_rng(4)
    days = [(int(rng.integers(0, 20)), 200) for _ in range(30)]
    alpha, beta = 1.0, 1.0
    for successes, exposures in days:  # yesterday's posterior is today's prior
        a, b = bandit.beta_posterior(np.array([successes]), np.array([exposures]), alpha, beta)
        alpha, beta = float(a[0]), float(b[0])
    a_all, b_all = bandit.beta_posterior(
        np.array([sum(s for s, _ in days)]), np.array([sum(n for _, n in days)]), 1.0, 1.0
    )
    assert (alpha, beta) == (float(a_all[0]), float(b_all[0]))


def _exact_prob_b_beats_a(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X_B > X_A) for X_A ~ Beta(a1, b1), X_B ~ Beta(a2, b2), integer a2 (closed-form sum)."""
    return sum(
        math.exp(betaln(a1 + i, b1 + b2) - math.log(b2 + i) - betaln(1 + i, b2) - betaln(a1, b1)) for i in range(a2)
    )


def test_probability_of_being_best_matches_the_exact_two_arm_formula():
    successes, exposures = np.array([12, 20]), np.array([200, 210])
    post = bandit.bernoulli_posterior(successes, exposures, 1.0, 1.0, 400_000, _rng())
    exact = _exact_prob_b_beats_a(13, 189, 21, 191)
    assert 0.8 < exact < 0.99
    assert post.prob_best[1] == pytest.approx(exact, abs=0.004)
    assert post.prob_best.sum() == pytest.approx(1.0)


def test_pooled_prior_borrows_other_segments_up_to_the_cap():
    alpha, beta, weight = bandit.pooled_prior(np.array([10.0, 0.0]), np.array([1000.0, 20.0]), 1.0, 1.0, 100.0)
    rate0 = 11 / 1002
    assert weight.tolist() == [100.0, 20.0]
    assert alpha[0] == pytest.approx(1 + 100 * rate0) and beta[0] == pytest.approx(1 + 100 * (1 - rate0))
    assert alpha[1] == pytest.approx(1 + 20 * (1 / 22))
    off = bandit.pooled_prior(np.array([10.0]), np.array([1000.0]), 1.0, 1.0, 0.0)
    assert off[0].tolist() == [1.0] and off[1].tolist() == [1.0]


def test_value_posterior_mean_is_rate_times_shrunk_mean_value():
    s, n, total = np.array([10.0, 0.0]), np.array([100.0, 50.0]), np.array([2000.0, 0.0])
    post = bandit.value_posterior(s, n, total, 1.0, 1.0, 20_000, _rng(), value_shape=2.0)
    pooled_mean = 2000 / 10
    assert post.mean[0] == pytest.approx(11 / 102 * (pooled_mean + 2000) / 11)
    assert post.mean[1] == pytest.approx(1 / 52 * pooled_mean)
    assert post.lower[0] < post.mean[0] < post.upper[0]
    assert post.prob_best[0] > 0.9


@pytest.mark.parametrize("seed", range(40))
def test_constrained_shares_respect_floor_cap_and_sum(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    floor = float(rng.uniform(0, 1 / k))
    previous = rng.dirichlet(np.ones(k)) * (1 - k * floor) + floor
    target = rng.dirichlet(np.ones(k) * 0.3)
    cap = float(rng.uniform(0.01, 0.5))
    result = bandit.constrain(target, previous, floor, cap)
    assert result.shares.sum() == pytest.approx(1.0)
    assert (result.shares >= floor - 1e-9).all()
    assert (np.abs(result.shares - previous) <= cap + 1e-9).all()
    assert set(result.reasons) <= {bandit.THOMPSON, bandit.FLOOR, bandit.CAPPED, bandit.REBALANCED}


def test_reasons_name_the_binding_constraint():
    capped = bandit.constrain(np.array([0.96, 0.02, 0.02]), np.full(3, 1 / 3), 0.03, 0.2)
    assert capped.shares[0] == pytest.approx(1 / 3 + 0.2) and capped.reasons[0] == bandit.CAPPED
    floored = bandit.constrain(np.array([0.98, 0.01, 0.01]), np.array([0.9, 0.05, 0.05]), 0.03, 0.2)
    assert floored.shares.tolist() == pytest.approx([0.94, 0.03, 0.03])
    assert floored.reasons[1:] == [bandit.FLOOR, bandit.FLOOR]
    free = bandit.constrain(np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.3, 0.3]), 0.03, 0.2)
    assert free.shares.tolist() == pytest.approx([0.5, 0.3, 0.2]) and set(free.reasons) == {bandit.THOMPSON}


def test_floor_wins_when_the_cap_cannot_reach_it():
    result = bandit.constrain(np.array([1.0, 0.0]), np.array([1.0, 0.0]), 0.1, 0.01)
    assert result.shares.tolist() == pytest.approx([0.9, 0.1]) and result.reasons[1] == bandit.FLOOR


def test_budget_bounds_are_respected_with_their_reasons():
    result = bandit.constrain(
        np.array([0.9, 0.05, 0.05]),
        np.array([0.5, 0.25, 0.25]),
        0.05,
        1.0,
        min_share=np.array([0.0, 0.2, 0.0]),
        max_share=np.array([0.6, 1.0, 1.0]),
    )
    assert result.shares[0] == pytest.approx(0.6) and result.reasons[0] == bandit.MAX_SHARE
    assert result.shares[1] == pytest.approx(0.2) and result.reasons[1] == bandit.MIN_SHARE


EXPERIMENT = Experiment("exp", "engagement", ("A", "B", "C"), "holdout", "click", 0.1)


def _totals(rows: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"experiment_id": "exp", "segment": seg, "variant_id": v, "exposures": n, "successes": s, "value_usd": 0.0}
            for seg, v, n, s in rows
        ]
    )


def _no_previous() -> pd.DataFrame:
    return pd.DataFrame(columns=["experiment_id", "segment", "variant_id", "new_share", "allocation_date"])


def test_no_reallocation_before_every_arm_has_min_exposures():
    totals = _totals([("NA", "A", 500, 10), ("NA", "B", 500, 60), ("NA", "C", 40, 0)])
    settings = BanditSettings(min_exposures=100, pooling_exposures=0)
    rows = allocate([EXPERIMENT], totals, _no_previous(), settings, DAY)
    assert rows["new_share"].tolist() == pytest.approx([1 / 3] * 3)
    assert set(rows["reason"]) == {bandit.MIN_EXPOSURES}
    later = allocate(
        [EXPERIMENT],
        _totals([("NA", "A", 500, 10), ("NA", "B", 500, 60), ("NA", "C", 100, 2)]),
        _no_previous(),
        settings,
        DAY,
    )
    shares = later.set_index("variant_id")["new_share"]
    assert shares["B"] == pytest.approx(1 / 3 + settings.max_daily_change)  # capped on the first move
    assert later.set_index("variant_id").loc["B", "reason"] == bandit.CAPPED


def test_cap_scales_with_days_since_the_previous_allocation():
    totals = _totals([("NA", "A", 5000, 100), ("NA", "B", 5000, 600), ("NA", "C", 5000, 100)])
    previous = pd.DataFrame(
        {
            "experiment_id": "exp",
            "segment": "NA",
            "variant_id": ["A", "B", "C"],
            "new_share": [1 / 3] * 3,
            "allocation_date": DAY - datetime.timedelta(days=2),
        }
    )
    rows = allocate([EXPERIMENT], totals, previous, BanditSettings(max_daily_change=0.2), DAY)
    b = rows.set_index("variant_id").loc["B"]
    assert b["days_since_previous"] == 2
    assert b["new_share"] == pytest.approx(1 / 3 + 0.4)


def test_same_inputs_give_the_same_allocation():
    totals = _totals(
        [
            ("NA", "A", 300, 12),
            ("NA", "B", 300, 15),
            ("NA", "C", 300, 13),
            ("EU", "A", 150, 3),
            ("EU", "B", 150, 9),
            ("EU", "C", 120, 4),
        ]
    )
    settings = BanditSettings(min_exposures=50)
    first = allocate([EXPERIMENT], totals, _no_previous(), settings, DAY)
    again = allocate([EXPERIMENT], totals.sample(frac=1, random_state=3), _no_previous(), settings, DAY)
    pd.testing.assert_frame_equal(first, again)
    other_seed = allocate([EXPERIMENT], totals, _no_previous(), BanditSettings(min_exposures=50, random_seed=99), DAY)
    assert not np.allclose(first["prob_best"], other_seed["prob_best"])


def test_aggregate_maps_units_to_segments():
    outcomes = pd.DataFrame(
        {
            "experiment_id": "exp",
            "unit_id": ["a", "b", "c", "d"],
            "variant_id": ["A", "A", "B", "B"],
            "exposures": [2, 1, 3, 1],
            "successes": [1, 0, 2, 0],
            "value_usd": 0.0,
        }
    )
    segments = pd.Series({"a": "NA", "b": "EU", "c": "NA"})
    totals = aggregate(outcomes, segments).set_index(["segment", "variant_id"])
    assert totals.loc[("NA", "A"), "exposures"] == 2 and totals.loc[("NA", "B"), "successes"] == 2
    assert totals.loc[("unknown", "B"), "exposures"] == 1  # a unit without a known segment
