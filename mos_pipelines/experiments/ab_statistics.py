"""A/B statistics: sample size and minimum detectable effect, the two-proportion test, lift against a
holdout, and an always-valid (sequential) test that may be checked every day.

Fixed-horizon pieces come from statsmodels (power of a two-sample test on Cohen's h, the z test,
Newcombe and log-ratio intervals). The sequential test is the mixture SPRT (mSPRT) of Johari et al.,
"Peeking at A/B tests" (2017), on the difference of two rates with a normal mixing distribution of
scale τ: its p-values stay valid however often they are looked at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)


class StatsInputError(ValueError):
    """Counts or rates that cannot be tested (the message names the argument)."""


def _rate(name: str, value: float) -> float:
    if not 0 < value < 1:
        raise StatsInputError(f"{name} must be a rate strictly between 0 and 1, got {value!r}")
    return float(value)


def _counts(name: str, successes: float, exposures: float) -> None:
    if exposures <= 0:
        raise StatsInputError(f"{name}: exposures must be > 0, got {exposures!r}")
    if not 0 <= successes <= exposures:
        raise StatsInputError(f"{name}: successes must be between 0 and exposures ({exposures!r}), got {successes!r}")


@dataclass(frozen=True)
class SampleSize:
    baseline: float
    treatment_rate: float
    absolute_effect: float
    alpha: float
    power: float
    ratio: float  # treatment exposures per control exposure
    control_n: int
    treatment_n: int

    @property
    def total_n(self) -> int:
        return self.control_n + self.treatment_n


def sample_size(
    baseline: float, mde: float, relative: bool = False, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> SampleSize:
    """Exposures per arm to detect ``mde`` (absolute, or relative to the baseline) with a two-sided test."""
    baseline = _rate("baseline", baseline)
    if mde == 0:
        raise StatsInputError("mde must not be 0")
    treatment = baseline * (1 + mde) if relative else baseline + mde
    treatment = _rate("baseline + mde", treatment)
    h = abs(proportion_effectsize(treatment, baseline))
    n = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio, alternative="two-sided")
    control_n = math.ceil(n)
    return SampleSize(
        baseline, treatment, treatment - baseline, alpha, power, ratio, control_n, math.ceil(control_n * ratio)
    )


def minimum_detectable_effect(
    baseline: float, control_n: int, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> SampleSize:
    """The smallest increase over ``baseline`` detectable with ``control_n`` (and ratio × it) exposures."""
    baseline = _rate("baseline", baseline)
    if control_n < 2:
        raise StatsInputError(f"exposures per arm must be >= 2, got {control_n!r}")
    h = NormalIndPower().solve_power(nobs1=control_n, alpha=alpha, power=power, ratio=ratio, alternative="two-sided")
    treatment = math.sin(min(math.pi / 2, math.asin(math.sqrt(baseline)) + h / 2)) ** 2
    return SampleSize(
        baseline, treatment, treatment - baseline, alpha, power, ratio, int(control_n), math.ceil(control_n * ratio)
    )


@dataclass(frozen=True)
class ProportionComparison:
    """Treatment against control (or holdout): rates, difference and relative lift with intervals."""

    control_rate: float
    treatment_rate: float
    difference: float
    difference_lower: float
    difference_upper: float
    lift: float | None  # treatment / control − 1
    lift_lower: float | None
    lift_upper: float | None
    z: float
    p_value: float
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def two_proportion_test(
    control_successes: int, control_n: int, treatment_successes: int, treatment_n: int, alpha: float = 0.05
) -> ProportionComparison:
    """Two-sided z test (pooled variance), Newcombe interval of the difference, log-ratio interval of the lift."""
    _counts("control", control_successes, control_n)
    _counts("treatment", treatment_successes, treatment_n)
    p_c, p_t = control_successes / control_n, treatment_successes / treatment_n
    if control_successes + treatment_successes in (0, control_n + treatment_n):
        z, p = 0.0, 1.0  # no variation at all: nothing to test
    else:
        z, p = proportions_ztest([treatment_successes, control_successes], [treatment_n, control_n])
    low, high = confint_proportions_2indep(
        treatment_successes, treatment_n, control_successes, control_n, method="newcomb", compare="diff", alpha=alpha
    )
    lift = lift_low = lift_high = None
    if control_successes > 0:
        lift = p_t / p_c - 1
        if treatment_successes > 0:
            r_low, r_high = confint_proportions_2indep(
                treatment_successes,
                treatment_n,
                control_successes,
                control_n,
                method="log-adjusted",
                compare="ratio",
                alpha=alpha,
            )
            lift_low, lift_high = r_low - 1, r_high - 1
    return ProportionComparison(
        p_c, p_t, p_t - p_c, float(low), float(high), lift, lift_low, lift_high, float(z), float(p), alpha
    )


def lift_vs_holdout(
    holdout_successes: int, holdout_n: int, treated_successes: int, treated_n: int, alpha: float = 0.05
) -> ProportionComparison:
    """Lift of the treated population over the persistent holdout (the holdout is the control)."""
    return two_proportion_test(holdout_successes, holdout_n, treated_successes, treated_n, alpha)


def rate_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson interval of a rate."""
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return float(low), float(high)


@dataclass(frozen=True)
class SequentialResult:
    """mSPRT after each look: always-valid p-values (non-increasing) and intervals of the difference."""

    difference: np.ndarray
    p_value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alpha: float

    @property
    def rejected(self) -> bool:
        return bool(self.p_value[-1] <= self.alpha) if len(self.p_value) else False

    @property
    def first_rejection(self) -> int | None:
        hits = np.flatnonzero(self.p_value <= self.alpha)
        return int(hits[0]) if len(hits) else None


def msprt(
    control_successes, control_n, treatment_successes, treatment_n, tau: float = 0.02, alpha: float = 0.05
) -> SequentialResult:
    """Always-valid test of equal rates from cumulative counts at each look (arrays, one entry per look;
    the last axis is the look). The variance of the difference uses the pooled rate (its value under
    the null), so a look with no successes yet carries no evidence."""
    xc, nc = np.asarray(control_successes, float), np.asarray(control_n, float)
    xt, nt = np.asarray(treatment_successes, float), np.asarray(treatment_n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where((nc > 0) & (nt > 0), xt / np.maximum(nt, 1) - xc / np.maximum(nc, 1), 0.0)
        pooled = (xc + xt) / np.maximum(nc + nt, 1)
        v = pooled * (1 - pooled) * (1 / np.maximum(nc, 1) + 1 / np.maximum(nt, 1))
        informative = v > 0
        v_safe = np.where(informative, v, 1.0)
        t2 = tau * tau
        log_lr = 0.5 * np.log(v_safe / (v_safe + t2)) + diff**2 * t2 / (2 * v_safe * (v_safe + t2))
        log_lr = np.where(informative, log_lr, 0.0)
        p_look = np.minimum(1.0, np.exp(-log_lr))
        p_value = np.minimum.accumulate(p_look, axis=-1)
        half = np.sqrt(
            np.maximum(v_safe * (v_safe + t2) / t2 * (np.log((v_safe + t2) / v_safe) - 2 * np.log(alpha)), 0.0)
        )
        half = np.where(informative, half, np.inf)
    return SequentialResult(diff, p_value, diff - half, diff + half, alpha)


def normal_interval(values: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean of ``values`` with a normal-approximation interval."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    half = sps.norm.ppf(1 - alpha / 2) * v.std(ddof=1) / math.sqrt(len(v))
    return mean, mean - half, mean + half
