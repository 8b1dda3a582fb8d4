"""Thompson sampling over the arms of one experiment × segment, with guard rails.

- Success rates (``click`` and ``conversion`` goals): Beta–Bernoulli. The posterior of an arm with
  ``s`` successes in ``n`` exposures under a Beta(α, β) prior is Beta(α + s, β + n − s); updating
  once with a day's batch equals updating once per exposure (conjugacy), so daily batches lose nothing.
- Value per exposure (``revenue`` goal): success rate × mean value of a success, the rate Beta as
  above and the mean value from a Gamma model of success values (shape fixed from the pooled data,
  conjugate Gamma posterior on the rate, prior centred on the pooled mean with one pseudo-success).
- Segments of one experiment share strength: a segment's prior is the base prior updated with the
  other segments' data, worth at most ``pooling_exposures`` pseudo-exposures (``pooled_prior``).
- The target share of an arm is its posterior probability of being the best (randomised probability
  matching, i.e. Thompson sampling in batch form), estimated from seeded posterior draws.
- ``constrain`` turns the target into the new share: an exploration floor per arm (and optional
  per-arm minimum/maximum), a cap on the change since the previous share, shares summing to 1. It is
  the Euclidean projection of the target onto those constraints, so an arm is moved only as far as a
  constraint forces it, and each binding constraint is reported as the arm's reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy import stats

INTERVAL = 0.95
THOMPSON = "thompson"  # reasons, in the order they are checked
FLOOR = "floor"
CAPPED = "capped"
MIN_SHARE = "min_share"
MAX_SHARE = "max_share"
MIN_EXPOSURES = "min_exposures"
SINGLE_ARM = "single_arm"
REBALANCED = "rebalanced"  # moved off its target only to absorb what a constrained arm could not take


@dataclass(frozen=True)
class Posterior:
    """Per arm: posterior mean and 95 % interval of the reward per exposure, and P(best)."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    prob_best: np.ndarray
    alpha: np.ndarray  # Beta parameters of the success rate
    beta: np.ndarray


def seeded_rng(seed: int, *keys: object) -> np.random.Generator:
    """A generator keyed by the seed and any labels (experiment, segment, date): same keys, same draws."""
    label = "|".join(str(k) for k in keys)
    words = np.frombuffer(hashlib.sha256(label.encode()).digest()[:16], dtype=np.uint32)
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words.tolist()]))


def beta_posterior(
    successes: np.ndarray, exposures: np.ndarray, prior_alpha: float | np.ndarray, prior_beta: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Beta(α + s, β + n − s) per arm."""
    s = np.asarray(successes, dtype=float)
    n = np.asarray(exposures, dtype=float)
    if np.any(s < 0) or np.any(s > n):
        raise ValueError("successes must be between 0 and the number of exposures for every arm")
    return prior_alpha + s, prior_beta + n - s


def pooled_prior(
    other_successes: np.ndarray,
    other_exposures: np.ndarray,
    prior_alpha: float,
    prior_beta: float,
    pooling_exposures: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per arm, a segment's prior borrowed from the experiment's other segments (partial pooling).

    The base Beta(α, β) prior is updated with the other segments' rate, weighted as at most
    ``pooling_exposures`` pseudo-exposures (fewer when the other segments have seen fewer): a small
    segment starts from what the experiment learned elsewhere, and its own data take over as they
    accumulate. 0 turns pooling off. Returns α, β and the pseudo-exposures per arm.
    """
    n = np.maximum(np.asarray(other_exposures, dtype=float), 0)
    s = np.clip(np.asarray(other_successes, dtype=float), 0, n)
    rate = (prior_alpha + s) / (prior_alpha + prior_beta + n)
    weight = np.minimum(float(pooling_exposures), n)
    return prior_alpha + weight * rate, prior_beta + weight * (1 - rate), weight


def prob_best(draws: np.ndarray) -> np.ndarray:
    """Share of draws (rows) in which each arm (column) is the largest; ties split evenly."""
    top = draws.max(axis=1, keepdims=True)
    winners = draws == top
    return (winners / winners.sum(axis=1, keepdims=True)).mean(axis=0)


def bernoulli_posterior(
    successes: np.ndarray,
    exposures: np.ndarray,
    prior_alpha: float | np.ndarray,
    prior_beta: float | np.ndarray,
    draws: int,
    generator: np.random.Generator,
) -> Posterior:
    alpha, beta = beta_posterior(successes, exposures, prior_alpha, prior_beta)
    sample = generator.beta(alpha, beta, size=(draws, len(alpha)))
    tail = (1 - INTERVAL) / 2
    return Posterior(
        mean=alpha / (alpha + beta),
        lower=stats.beta.ppf(tail, alpha, beta),
        upper=stats.beta.ppf(1 - tail, alpha, beta),
        prob_best=prob_best(sample),
        alpha=alpha,
        beta=beta,
    )


def value_posterior(
    successes: np.ndarray,
    exposures: np.ndarray,
    value_sum: np.ndarray,
    prior_alpha: float | np.ndarray,
    prior_beta: float | np.ndarray,
    draws: int,
    generator: np.random.Generator,
    value_shape: float | None = None,
) -> Posterior:
    """Reward = value per exposure: Beta success rate × Gamma-model mean value of a success."""
    s = np.asarray(successes, dtype=float)
    total = np.asarray(value_sum, dtype=float)
    alpha, beta = beta_posterior(s, exposures, prior_alpha, prior_beta)
    pooled_mean = total.sum() / s.sum() if s.sum() > 0 else 1.0
    shape = value_shape if value_shape is not None else 2.0
    # success values ~ Gamma(shape, rate θ); prior θ ~ Gamma(1 + shape, pooled_mean) is one pseudo-success of
    # the pooled mean value, so the posterior mean value is (pooled_mean + Σ values) / (1 + successes)
    rate_a = 1 + shape * (1 + s)
    rate_b = pooled_mean + total
    rate_draws = generator.gamma(rate_a, 1 / rate_b, size=(draws, len(s)))
    mean_value_draws = shape / rate_draws
    rate = generator.beta(alpha, beta, size=(draws, len(s)))
    value = rate * mean_value_draws
    tail = (1 - INTERVAL) / 2
    mean_value = shape * rate_b / (rate_a - 1)  # E[shape/θ] for θ ~ Gamma(a, rate b) is shape·b/(a − 1)
    return Posterior(
        mean=alpha / (alpha + beta) * mean_value,
        lower=np.quantile(value, tail, axis=0),
        upper=np.quantile(value, 1 - tail, axis=0),
        prob_best=prob_best(value),
        alpha=alpha,
        beta=beta,
    )


def estimate_value_shape(values: np.ndarray) -> float:
    """Gamma shape of success values by moments (mean² / variance), kept within [0.5, 20]; 2 without data."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) < 3 or v.var() == 0:
        return 2.0
    return float(np.clip(v.mean() ** 2 / v.var(), 0.5, 20.0))


@dataclass(frozen=True)
class Constrained:
    shares: np.ndarray
    reasons: list[str]


def constrain(
    target: np.ndarray,
    previous: np.ndarray,
    floor: float,
    max_change: float,
    min_share: np.ndarray | None = None,
    max_share: np.ndarray | None = None,
) -> Constrained:
    """The shares closest to ``target`` with share ≥ max(floor, min_share), ≤ max_share,
    |share − previous| ≤ max_change, and shares summing to 1.

    When the change cap and the floor/minimum cannot both hold (e.g. a new floor above an arm's
    previous share), the floor wins and the cap is relaxed for that update.
    """
    target = np.asarray(target, dtype=float)
    previous = np.asarray(previous, dtype=float)
    k = len(target)
    if k == 1:
        return Constrained(np.ones(1), [SINGLE_ARM])
    floor = min(floor, 1.0 / k)
    base_low = np.maximum(floor, np.zeros(k) if min_share is None else np.asarray(min_share, dtype=float))
    base_high = np.ones(k) if max_share is None else np.asarray(max_share, dtype=float)
    low = np.maximum(base_low, previous - max_change)
    high = np.minimum(base_high, previous + max_change)
    if low.sum() > 1 + 1e-12 or high.sum() < 1 - 1e-12 or np.any(low > high):
        low, high = base_low, base_high
    lam_low, lam_high = (low - target).min() - 1.0, (high - target).max() + 1.0
    for _ in range(200):  # bisection on the shift λ: Σ clip(target + λ, low, high) = 1
        lam = (lam_low + lam_high) / 2
        if np.clip(target + lam, low, high).sum() > 1:
            lam_high = lam
        else:
            lam_low = lam
    shares = np.clip(target + (lam_low + lam_high) / 2, low, high)
    shares = shares / shares.sum()
    reasons = []
    eps = 1e-9
    for i in range(k):
        if shares[i] <= low[i] + eps and target[i] < low[i] - eps:
            if low[i] == base_low[i]:
                reasons.append(FLOOR if base_low[i] <= floor + eps else MIN_SHARE)
            else:
                reasons.append(CAPPED)
        elif shares[i] >= high[i] - eps and target[i] > high[i] + eps:
            reasons.append(MAX_SHARE if high[i] == base_high[i] and high[i] < 1 else CAPPED)
        elif abs(shares[i] - target[i]) > 1e-6:
            reasons.append(REBALANCED)
        else:
            reasons.append(THOMPSON)
    return Constrained(shares, reasons)


def previous_shares(arms: list[str], previous: dict[str, float] | None) -> np.ndarray:
    """Yesterday's shares in ``arms`` order; equal shares without history, and a new arm joins at 1/K."""
    k = len(arms)
    if not previous:
        return np.full(k, 1.0 / k)
    known = np.array([previous.get(a, np.nan) for a in arms], dtype=float)
    new = np.isnan(known)
    if new.all() or known[~new].sum() <= 0:
        return np.full(k, 1.0 / k)
    out = np.where(new, 1.0 / k, known)
    out[~new] = known[~new] / known[~new].sum() * (1 - new.sum() / k)
    return out
