"""The budget split that maximises the expected outcome under the fitted response curves.

For a budget spent evenly over ``weeks`` weeks, channel c gets ``share_c · budget / weeks`` a week, split across
regions by its historical region mix; its outcome per week is the posterior mean of its steady-state curve (carry-over
included: the adstock of a constant spend is that spend). The objective is concave (each logistic curve is), so the
SLSQP optimum within the share bounds (min/max shares intersected with previous ± the change cap) is the global one.
The expected outcome's interval comes from evaluating the chosen split under every posterior draw."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from mos_pipelines.mmm.model import Posterior


class InfeasibleBounds(ValueError):
    """The share bounds cannot add up to 1."""


@dataclass
class Split:
    channels: list[str]
    shares: np.ndarray
    lower_bound: np.ndarray
    upper_bound: np.ndarray
    budget_usd: float
    weeks: float
    expected: float
    lower: float
    upper: float
    channel_expected: np.ndarray  # (C,) posterior mean outcome per channel over the period
    channel_lower: np.ndarray
    channel_upper: np.ndarray
    notes: list[str]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "channel": self.channels,
                "share": self.shares,
                "budget_usd": self.shares * self.budget_usd,
                "min_share": self.lower_bound,
                "max_share": self.upper_bound,
                "expected_outcome": self.channel_expected,
                "expected_outcome_lower": self.channel_lower,
                "expected_outcome_upper": self.channel_upper,
            }
        )


def outcome_draws(posterior: Posterior, shares: np.ndarray, budget_usd: float, weeks: float) -> np.ndarray:
    """(draws, channels) outcome over the period of a split."""
    return weeks * posterior.steady_weekly(np.asarray(shares) * budget_usd / weeks)


def evaluate(
    posterior: Posterior, shares: np.ndarray, budget_usd: float, weeks: float, interval: float = 0.9
) -> tuple[float, float, float]:
    """Expected outcome of a split over the period, with its interval."""
    total = outcome_draws(posterior, shares, budget_usd, weeks).sum(axis=1)
    tail = (1 - interval) / 2
    return float(total.mean()), float(np.quantile(total, tail)), float(np.quantile(total, 1 - tail))


def bounds(
    n: int,
    min_share: np.ndarray | float = 0.0,
    max_share: np.ndarray | float = 1.0,
    previous: np.ndarray | None = None,
    max_change: float | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-channel share bounds: [min, max] ∩ [previous - max_change, previous + max_change]; the change cap is
    dropped (with a note) when it cannot hold together with the min/max shares."""
    lo = np.broadcast_to(np.asarray(min_share, dtype=float), (n,)).copy()
    hi = np.broadcast_to(np.asarray(max_share, dtype=float), (n,)).copy()
    if (lo > hi).any() or lo.sum() > 1 + 1e-9 or hi.sum() < 1 - 1e-9:
        raise InfeasibleBounds(
            f"share bounds cannot add up to 1: min shares sum to {lo.sum():.3f}, max shares to {hi.sum():.3f}"
            + (" and a min share is above its max" if (lo > hi).any() else "")
        )
    notes: list[str] = []
    if previous is not None and max_change is not None:
        clo = np.maximum(lo, np.asarray(previous) - max_change)
        chi = np.minimum(hi, np.asarray(previous) + max_change)
        if (clo <= chi + 1e-12).all() and clo.sum() <= 1 + 1e-9 and chi.sum() >= 1 - 1e-9:
            lo, hi = clo, np.maximum(chi, clo)
        else:
            notes.append(
                f"the change cap ±{max_change:.3f} around the previous split cannot hold with the min/max shares; "
                "only those apply"
            )
    return lo, hi, notes


def optimize(
    posterior: Posterior,
    budget_usd: float,
    weeks: float,
    min_share: np.ndarray | float = 0.0,
    max_share: np.ndarray | float = 1.0,
    previous: np.ndarray | None = None,
    max_change: float | None = None,
    interval: float = 0.9,
) -> Split:
    """The split maximising the posterior-mean outcome within the bounds."""
    n = len(posterior.channels)
    lo, hi, notes = bounds(n, min_share, max_share, previous, max_change)
    weekly_total = budget_usd / weeks
    lam, beta = posterior.lam, posterior.beta_usd  # (D, C)
    per = posterior.region_mix / posterior.scale_usd[:, None]  # (C, R) scaled spend per dollar of weekly spend

    def value_and_grad(s: np.ndarray) -> tuple[float, np.ndarray]:
        z = lam[:, :, None] * (s * weekly_total)[None, :, None] * per[None]  # (D, C, R)
        e = np.exp(-z)
        val = (beta[:, :, None] * (1 - e) / (1 + e)).sum(axis=(1, 2)).mean() * weeks
        dz = lam[:, :, None] * weekly_total * per[None]
        grad = (beta[:, :, None] * 2 * e / (1 + e) ** 2 * dz).sum(axis=2).mean(axis=0) * weeks
        return -float(val), -grad

    starts = [np.clip(np.full(n, 1 / n), lo, hi)]
    if previous is not None:
        starts.append(np.clip(np.asarray(previous, dtype=float), lo, hi))
    # SLSQP stalls on objectives in the millions: minimise the outcome relative to the even split's
    norm = max(abs(value_and_grad(starts[0])[0]), 1e-9)

    def scaled(s: np.ndarray) -> tuple[float, np.ndarray]:
        v, grad = value_and_grad(s)
        return v / norm, grad / norm

    best = None
    for x0 in starts:
        res = minimize(
            scaled,
            x0,
            jac=True,
            method="SLSQP",
            bounds=list(zip(lo, hi)),
            constraints=[{"type": "eq", "fun": lambda s: s.sum() - 1, "jac": lambda s: np.ones_like(s)}],
            options={"maxiter": 500, "ftol": 1e-12},
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    shares = np.clip(best.x, lo, hi)
    shares = shares / shares.sum()
    shares = np.clip(shares, lo, hi)  # renormalising can nudge a share past a bound by rounding only
    draws = outcome_draws(posterior, shares, budget_usd, weeks)
    total = draws.sum(axis=1)
    tail = (1 - interval) / 2
    return Split(
        list(posterior.channels),
        shares,
        lo,
        hi,
        budget_usd,
        weeks,
        float(total.mean()),
        float(np.quantile(total, tail)),
        float(np.quantile(total, 1 - tail)),
        draws.mean(axis=0),
        np.quantile(draws, tail, axis=0),
        np.quantile(draws, 1 - tail, axis=0),
        notes,
    )
