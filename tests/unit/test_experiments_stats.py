"""A/B statistics: sample sizes against the textbook formula, tests, lift, and peeking-safe p-values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from mos_pipelines.experiments.ab_statistics import (
    StatsInputError,
    lift_vs_holdout,
    minimum_detectable_effect,
    msprt,
    sample_size,
    two_proportion_test,
)


def test_sample_size_matches_the_arcsine_formula():
    result = sample_size(0.05, 0.01, alpha=0.05, power=0.8)
    h = 2 * math.asin(math.sqrt(0.06)) - 2 * math.asin(math.sqrt(0.05))
    # var(2·asin√p̂) = 1/n per arm, so the difference of two arms has variance 2/n
    expected = 2 * ((norm.ppf(0.975) + norm.ppf(0.8)) / h) ** 2
    assert result.control_n == math.ceil(expected)
    assert result.treatment_n == result.control_n
    relative = sample_size(0.05, 0.2, relative=True)
    assert relative.treatment_rate == pytest.approx(0.06) and relative.control_n == result.control_n


def test_unequal_split_needs_fewer_control_but_more_total_exposures():
    equal = sample_size(0.05, 0.01)
    holdout = sample_size(0.05, 0.01, ratio=9)  # a 10 % holdout
    assert holdout.control_n < equal.control_n and holdout.total_n > equal.total_n


def test_minimum_detectable_effect_inverts_sample_size():
    mde = minimum_detectable_effect(0.05, 8000)
    back = sample_size(0.05, mde.absolute_effect)
    assert abs(back.control_n - 8000) <= 2
    assert minimum_detectable_effect(0.05, 32000).absolute_effect < mde.absolute_effect


def test_two_proportion_test_matches_the_pooled_z_statistic():
    result = two_proportion_test(100, 2000, 130, 2000)
    pooled = 230 / 4000
    z = (0.065 - 0.05) / math.sqrt(pooled * (1 - pooled) * (2 / 2000))
    assert result.z == pytest.approx(z) and result.p_value == pytest.approx(2 * norm.sf(z))
    assert result.difference_lower < 0.015 < result.difference_upper
    assert result.lift == pytest.approx(0.3) and result.lift_lower < 0.3 < result.lift_upper


def test_lift_vs_holdout_interval_covers_the_true_lift():
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(300):
        holdout = rng.binomial(2000, 0.05)
        treated = rng.binomial(18000, 0.06)
        result = lift_vs_holdout(holdout, 2000, treated, 18000)
        covered += result.lift_lower <= 0.2 <= result.lift_upper
    assert covered / 300 > 0.9


def test_invalid_counts_name_the_argument():
    with pytest.raises(StatsInputError, match="treatment: successes"):
        two_proportion_test(1, 10, 20, 10)
    with pytest.raises(StatsInputError, match="baseline"):
        sample_size(1.5, 0.01)


def test_peeking_every_day_inflates_the_fixed_test_but_not_the_msprt():
    rng = np.random.default_rng(11)
    experiments, looks, per_look = 2000, 30, 300
    n = np.arange(1, looks + 1) * per_look
    xc = rng.binomial(per_look, 0.1, size=(experiments, looks)).cumsum(axis=1)
    xt = rng.binomial(per_look, 0.1, size=(experiments, looks)).cumsum(axis=1)  # A/A: no true difference
    pooled = (xc + xt) / (2 * n)
    z = (xt - xc) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    naive_false_wins = (2 * norm.sf(np.abs(z)) < 0.05).any(axis=1).mean()
    sequential = msprt(xc, n, xt, n, tau=0.02, alpha=0.05)
    assert naive_false_wins > 0.15  # peeking at a fixed-horizon test: a false win in every ~5th A/A test
    assert (sequential.p_value[:, -1] <= 0.05).mean() <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / experiments)
    assert (np.diff(sequential.p_value, axis=1) <= 0).all()  # always-valid p-values never go back up


def test_msprt_finds_a_real_difference_and_its_interval_covers_it():
    rng = np.random.default_rng(12)
    looks, per_look = 30, 500
    n = np.arange(1, looks + 1) * per_look
    xc = rng.binomial(per_look, 0.10, size=looks).cumsum()
    xt = rng.binomial(per_look, 0.13, size=looks).cumsum()
    result = msprt(xc, n, xt, n, tau=0.02)
    assert result.rejected and result.first_rejection is not None and result.first_rejection < looks - 1
    assert result.lower[-1] < 0.03 < result.upper[-1]
