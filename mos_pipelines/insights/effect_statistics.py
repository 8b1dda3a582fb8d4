"""The statistics behind insight candidates: effects with intervals and p-values, and Benjamini–Hochberg.

- Ratio metrics (conversion rate, ROAS, CAC) are ratios of sums. Their variance comes from the delta
  method with days as the sampling units (the linearised ratio estimator): daily numerators and
  denominators carry every source of day-to-day noise (order sizes, clustered sessions) without a model
  of it. Few events make that estimate unreliable (a heavy-tailed revenue over a handful of days with an
  order looks calm until its one big order), so each arm's variance on the log scale is at least what a
  count model of its events gives: binomial for a rate, Poisson for a count, compound Poisson for revenue
  (N orders with a heavy-tailed amount: Var(log revenue) ≈ (1 + CV²)/N, CV² the squared coefficient of
  variation of the order value). Two slices are compared on the log of the ratio of their metrics, with
  Welch's degrees of freedom.
- Proportions from totals only (email variants: clicks per send, converted recipients per recipient)
  use the log relative risk (statsmodels ``test_proportions_2indep`` / ``confint_proportions_2indep``).
- A week against its seasonal baseline: the expected total is the mean of the same weekdays in the
  baseline weeks. The week's total and the baseline's are compared as two Poisson rates (statsmodels
  ``test_poisson_2indep``, score test; ``confint_poisson_2indep``, MOVER interval; t reference on the
  baseline's degrees of freedom) after dividing both by the metric's variance-to-mean ratio: the
  quasi-Poisson dispersion of the baseline days around their weekday means for counts and spend, and for
  revenue the compound model's μ·(φ + CV²) (μ the order value, φ the dispersion of the daily order counts).
- Benjamini–Hochberg q-values (scipy ``false_discovery_control``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep
from statsmodels.stats.rates import confint_poisson_2indep, test_poisson_2indep

CONFIDENCE = 0.95


@dataclass(frozen=True)
class RatioEstimate:
    """A ratio of sums over days with its delta-method variance, and the least variance of its log that the
    count model of its events allows (``floor``)."""

    numerator: float
    denominator: float
    days: int
    variance: float  # of the ratio (delta method over days)
    floor: float = 0.0  # of log(value): binomial, Poisson or compound-Poisson variance of the events behind it

    @property
    def value(self) -> float:
        return self.numerator / self.denominator if self.denominator else math.nan

    @property
    def log_se(self) -> float:
        """Standard error of log(value): the delta method's, at least the count model's."""
        if not self.value > 0:
            return math.inf
        return math.sqrt(max(self.variance / self.value**2, self.floor))

    def with_floor(self, floor: float) -> RatioEstimate:
        return RatioEstimate(self.numerator, self.denominator, self.days, self.variance, floor)


def binomial_log_variance(events: float, trials: float) -> float:
    """Var(log p̂) of a proportion of ``events`` in ``trials`` (delta method); infinite without events."""
    return 1 / events - 1 / trials if events > 0 and trials > 0 else math.inf


def poisson_log_variance(events: float) -> float:
    """Var(log N̂) of a Poisson count."""
    return 1 / events if events > 0 else math.inf


def compound_log_variance(orders: float, cv2: float) -> float:
    """Var(log revenue) of a sum of a Poisson number of orders with amounts of squared coefficient of
    variation ``cv2``: Var = E[N]·E[A²] = E[N]·μ²·(1 + CV²), so Var(log) ≈ (1 + CV²)/E[N]."""
    if not orders > 0:
        return math.inf
    return (1 + (cv2 if math.isfinite(cv2) else 0.0)) / orders


def order_value_cv2(revenue: np.ndarray, orders: np.ndarray) -> float:
    """Squared coefficient of variation of one order's amount, from cells (days, or days × channel × region)
    that each hold a number of orders and their revenue: with μ̂ = Σ R / Σ N,
    σ̂² = Σ (R_c − N_c μ̂)² / Σ (N_c − N_c² / Σ N) (unbiased for independent amounts), CV² = σ̂² / μ̂².
    NaN when fewer than two cells have orders."""
    r = np.asarray(revenue, dtype=float)
    n = np.asarray(orders, dtype=float)
    keep = n > 0
    r, n = r[keep], n[keep]
    total = n.sum()
    if keep.sum() < 2 or total <= 0 or r.sum() <= 0:
        return math.nan
    mu = r.sum() / total
    dof = float(np.sum(n - n**2 / total))
    if dof <= 0:
        return math.nan
    return float(np.sum((r - n * mu) ** 2) / dof / mu**2)


@dataclass(frozen=True)
class RatioEffect:
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


def compare_ratios(a: RatioEstimate, b: RatioEstimate, confidence: float = CONFIDENCE) -> RatioEffect:
    """A's metric relative to B's: log-ratio with Welch–Satterthwaite degrees of freedom."""
    if not (a.value > 0 and b.value > 0) or math.isinf(a.variance) or math.isinf(b.variance):
        return RatioEffect(math.nan, math.nan, math.nan, 1.0, math.inf, 0.0)
    va, vb = a.log_se**2, b.log_se**2  # each at least its count model's variance
    se = math.sqrt(va + vb)
    log_ratio = math.log(a.value / b.value)
    if se == 0:
        return RatioEffect(
            a.value / b.value, a.value / b.value, a.value / b.value, 0.0 if log_ratio else 1.0, 0.0, math.inf
        )
    df_terms = (va**2 / max(a.days - 1, 1)) + (vb**2 / max(b.days - 1, 1))
    df = (va + vb) ** 2 / df_terms if df_terms > 0 else math.inf
    t = log_ratio / se
    p = float(2 * stats.t.sf(abs(t), df))
    q = float(stats.t.ppf(0.5 + confidence / 2, df))
    return RatioEffect(math.exp(log_ratio), math.exp(log_ratio - q * se), math.exp(log_ratio + q * se), p, se, df)


def compare_proportions(x_a: float, n_a: float, x_b: float, n_b: float, confidence: float = CONFIDENCE) -> RatioEffect:
    """Relative risk of A against B from totals: Wald test and interval on the log scale (statsmodels)."""
    if min(x_a, x_b) <= 0 or min(n_a, n_b) <= 0:
        return RatioEffect(math.nan, math.nan, math.nan, 1.0, math.inf, math.inf)
    p_a, p_b = x_a / n_a, x_b / n_b
    test = test_proportions_2indep(x_a, n_a, x_b, n_b, compare="ratio", method="log")
    low, high = confint_proportions_2indep(x_a, n_a, x_b, n_b, compare="ratio", method="log", alpha=1 - confidence)
    se = math.sqrt(max(1 / x_a - 1 / n_a + 1 / x_b - 1 / n_b, 0.0))
    return RatioEffect(p_a / p_b, float(low), float(high), float(test.pvalue), se, math.inf)


@dataclass(frozen=True)
class WeekVsBaseline:
    observed: float
    expected: float
    change: float  # observed / expected − 1
    ci_low: float  # of the change
    ci_high: float
    p_value: float
    dispersion: float  # variance-to-mean ratio the totals were divided by
    baseline_weeks: int


def weekday_dispersion(daily: np.ndarray, baseline_weeks: int) -> float:
    """Quasi-Poisson dispersion φ = Σ (y − μ_weekday)² / μ_weekday / (n − 7) over the baseline days of a series
    ending with the week under test (at least 1; 1 when there are no degrees of freedom)."""
    y = np.asarray(daily, dtype=float)[-7 * (baseline_weeks + 1) : -7].reshape(baseline_weeks, 7)
    mu = y.mean(axis=0)
    dof = y.size - 7
    mask = mu > 0
    if dof <= 0 or not mask.any():
        return 1.0
    return max(float(np.sum(((y - mu) ** 2)[:, mask] / mu[mask]) / dof), 1.0)


def week_vs_baseline(
    daily: np.ndarray, baseline_weeks: int, confidence: float = CONFIDENCE, dispersion: float | None = None
) -> WeekVsBaseline:
    """The last 7 values against the same weekdays of the ``baseline_weeks`` weeks before them.

    ``daily`` is a day-by-day series ending with the week under test (length ≥ 7 × (weeks + 1)). Both totals
    are divided by ``dispersion`` (the variance-to-mean ratio; default: ``weekday_dispersion``) and compared
    as Poisson rates with exposures 1 and ``baseline_weeks`` (score test, MOVER interval of the ratio)."""
    y = np.asarray(daily, dtype=float)[-7 * (baseline_weeks + 1) :]
    base_total, observed = float(y[:-7].sum()), float(y[-7:].sum())
    expected = base_total / baseline_weeks
    if expected <= 0:
        return WeekVsBaseline(observed, expected, math.nan, math.nan, math.nan, 1.0, math.nan, baseline_weeks)
    k = dispersion if dispersion is not None else weekday_dispersion(y, baseline_weeks)
    k = k if math.isfinite(k) and k > 0 else 1.0
    # the dispersion is estimated from the baseline days around their weekday means: the score statistic is
    # referred to t on those degrees of freedom, and the interval's level widened to match
    dof = 7 * baseline_weeks - 7
    test = test_poisson_2indep(observed / k, 1, base_total / k, baseline_weeks, method="score")
    p_value = float(2 * stats.t.sf(abs(test.statistic), dof)) if dof > 0 else float(test.pvalue)
    alpha = 1 - confidence
    if dof > 0:
        alpha = float(2 * stats.norm.sf(stats.t.ppf(1 - alpha / 2, dof)))
    low, high = confint_poisson_2indep(observed / k, 1, base_total / k, baseline_weeks, method="mover", alpha=alpha)
    return WeekVsBaseline(
        observed, expected, observed / expected - 1, float(low) - 1, float(high) - 1, p_value, k, baseline_weeks
    )


@dataclass(frozen=True)
class RevenueWeek:
    result: WeekVsBaseline
    orders_expected: float  # in the week, from the baseline weeks
    order_value: float  # μ, pooled over the baseline and the week
    cv2: float  # of the order value, the larger of the series' own and ``cv2_floor``
    order_dispersion: float  # φ of the daily order counts


def revenue_week_vs_baseline(
    revenue: np.ndarray, orders: np.ndarray, baseline_weeks: int, cv2_floor: float, confidence: float = CONFIDENCE
) -> RevenueWeek:
    """Revenue of the last week against its baseline under a compound model: a week's revenue is a sum of N
    orders (N overdispersed Poisson, φ from the daily order counts) of amounts with mean μ and squared
    coefficient of variation CV², so Var = E[N]·μ²·(φ + CV²) = E[revenue]·μ·(φ + CV²). μ and CV² are pooled
    over the baseline and the week (the same process under H0, so one big order in the week widens its own
    test), and CV² is at least ``cv2_floor`` (the whole window's, over every channel and region)."""
    span = 7 * (baseline_weeks + 1)
    r = np.asarray(revenue, dtype=float)[-span:]
    n = np.asarray(orders, dtype=float)[-span:]
    phi = weekday_dispersion(n, baseline_weeks)
    mu = float(r.sum() / n.sum()) if n.sum() > 0 else math.nan
    own = order_value_cv2(r, n)
    cv2 = max(v for v in (own, cv2_floor, 0.0) if math.isfinite(v))
    k = mu * (phi + cv2) if math.isfinite(mu) and mu > 0 else math.nan
    result = week_vs_baseline(r, baseline_weeks, confidence, dispersion=k)
    return RevenueWeek(result, float(n[:-7].sum() / baseline_weeks), mu, cv2, phi)


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
    if len(p) == 0:
        return p
    return np.asarray(stats.false_discovery_control(p, method="bh"), dtype=float)
