"""The statistics behind insight candidates: effects with intervals and p-values, and Benjamini–Hochberg.

- Ratio metrics (conversion rate, ROAS, CAC) are ratios of sums. Their variance comes from the delta
  method with days as the sampling units (the linearised ratio estimator): daily numerators and
  denominators carry every source of day-to-day noise (order sizes, clustered sessions) without a model
  of it. Two slices are compared on the log of the ratio of their metrics, with Welch's degrees of freedom.
- Proportions from totals only (email variants: clicks per send, converted recipients per recipient)
  use the log relative risk with its delta-method standard error.
- A week against its seasonal baseline: the expected total is the mean of the same weekdays in the
  baseline weeks; the day-to-day dispersion comes from quasi-Poisson residuals around the weekday means.
- Benjamini–Hochberg q-values across every candidate of a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class RatioEstimate:
    """A ratio of sums over days with its delta-method variance."""

    numerator: float
    denominator: float
    days: int
    variance: float  # of the ratio

    @property
    def value(self) -> float:
        return self.numerator / self.denominator if self.denominator else math.nan

    @property
    def log_se(self) -> float:
        """Standard error of log(value)."""
        return math.sqrt(self.variance) / self.value if self.value > 0 else math.inf


@dataclass(frozen=True)
class Comparison:
    """Effect of A against B on a ratio scale: estimate, interval, p-value (two-sided)."""

    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    se_log: float
    df: float


def ratio_estimate(numerators: np.ndarray, denominators: np.ndarray) -> RatioEstimate:
    """Sum(num)/sum(den) with Var = n/(n-1) · Σ (num_d − r·den_d)² / (Σ den)²  (units: days)."""
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    n = len(num)
    total_num, total_den = float(num.sum()), float(den.sum())
    if n < 2 or total_den <= 0:
        return RatioEstimate(total_num, total_den, n, math.inf)
    r = total_num / total_den
    residual = num - r * den
    variance = float(n / (n - 1) * np.sum(residual**2) / total_den**2)
    return RatioEstimate(total_num, total_den, n, variance)


def compare_ratios(a: RatioEstimate, b: RatioEstimate, confidence: float = CONFIDENCE) -> Comparison:
    """A's metric relative to B's: log-ratio with Welch–Satterthwaite degrees of freedom."""
    if not (a.value > 0 and b.value > 0) or math.isinf(a.variance) or math.isinf(b.variance):
        return Comparison(math.nan, math.nan, math.nan, 1.0, math.inf, 0.0)
    va, vb = a.log_se**2, b.log_se**2
    se = math.sqrt(va + vb)
    log_ratio = math.log(a.value / b.value)
    if se == 0:
        return Comparison(a.value / b.value, a.value / b.value, a.value / b.value, 0.0 if log_ratio else 1.0, 0.0, math.inf)
    df_terms = (va**2 / max(a.days - 1, 1)) + (vb**2 / max(b.days - 1, 1))
    df = (va + vb) ** 2 / df_terms if df_terms > 0 else math.inf
    t = log_ratio / se
    p = float(2 * stats.t.sf(abs(t), df))
    q = float(stats.t.ppf(0.5 + confidence / 2, df))
    return Comparison(math.exp(log_ratio), math.exp(log_ratio - q * se), math.exp(log_ratio + q * se), p, se, df)


def compare_proportions(x_a: float, n_a: float, x_b: float, n_b: float, confidence: float = CONFIDENCE) -> Comparison:
    """Relative risk of A against B from totals (delta method on the log scale, normal reference)."""
    if min(x_a, x_b) <= 0 or min(n_a, n_b) <= 0:
        return Comparison(math.nan, math.nan, math.nan, 1.0, math.inf, math.inf)
    p_a, p_b = x_a / n_a, x_b / n_b
    se = math.sqrt(max(1 / x_a - 1 / n_a + 1 / x_b - 1 / n_b, 1e-18))
    log_rr = math.log(p_a / p_b)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = float(2 * stats.norm.sf(abs(log_rr / se)))
    return Comparison(p_a / p_b, math.exp(log_rr - z * se), math.exp(log_rr + z * se), p, se, math.inf)


@dataclass(frozen=True)
class WeekVsBaseline:
    observed: float
    expected: float
    change: float  # observed / expected − 1
    ci_low: float  # of the change
    ci_high: float
    p_value: float
    dispersion: float
    baseline_weeks: int


def week_vs_baseline(daily: np.ndarray, baseline_weeks: int, confidence: float = CONFIDENCE) -> WeekVsBaseline:
    """The last 7 values against the same weekdays of the ``baseline_weeks`` weeks before them.

    ``daily`` is a day-by-day series ending with the week under test (length ≥ 7 × (weeks + 1)).
    Dispersion φ = Σ (y − μ_weekday)² / μ_weekday / (n − 7) over the baseline days (at least 1), so
    Var(observed − expected) = φ · expected · (1 + 1/weeks)."""
    y = np.asarray(daily, dtype=float)[-7 * (baseline_weeks + 1):]
    base = y[:-7].reshape(baseline_weeks, 7)
    week = y[-7:]
    mu = base.mean(axis=0)
    expected = float(mu.sum())
    observed = float(week.sum())
    if expected <= 0:
        return WeekVsBaseline(observed, expected, math.nan, math.nan, math.nan, 1.0, math.nan, baseline_weeks)
    dof = base.size - 7
    if dof > 0:
        mask = mu > 0
        phi = float(np.sum(((base - mu) ** 2)[:, mask] / mu[mask]) / dof)
    else:
        phi = 1.0
    phi = max(phi, 1.0)
    se = math.sqrt(phi * expected * (1 + 1 / baseline_weeks))
    t = (observed - expected) / se
    reference = stats.t(dof) if dof > 0 else stats.norm()
    p = float(2 * reference.sf(abs(t)))
    q = float(reference.ppf(0.5 + confidence / 2))
    return WeekVsBaseline(observed, expected, observed / expected - 1, (observed - q * se) / expected - 1,
                          (observed + q * se) / expected - 1, p, phi, baseline_weeks)


@dataclass(frozen=True)
class MeanTest:
    mean: float
    ci_low: float
    ci_high: float
    p_value: float


def mean_against(values: np.ndarray, target: float, confidence: float = CONFIDENCE) -> MeanTest:
    """One-sample t-test of the mean of daily values against a target."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return MeanTest(mean, math.nan, math.nan, 1.0)
    se = float(x.std(ddof=1) / math.sqrt(n))
    if se == 0:
        return MeanTest(mean, mean, mean, 0.0 if mean != target else 1.0)
    t = (mean - target) / se
    q = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    return MeanTest(mean, mean - q * se, mean + q * se, float(2 * stats.t.sf(abs(t), n - 1)))


def benjamini_hochberg(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), in the input order."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(adjusted, 1.0)
    return q
