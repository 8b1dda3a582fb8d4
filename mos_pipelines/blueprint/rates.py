"""Outcomes per dollar with an interval: a Gamma–Poisson model (docs/DECISIONS.md, "Blueprint").

Outcomes (new customers) bought in a window are Poisson with mean ``rate × cost``; with a Gamma(a0, b0) prior on
the rate, the posterior is Gamma(a0 + outcomes, b0 + cost). Attributed credits may be fractional: the shape takes
them as they are.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def posterior(outcomes: float, exposure: float, prior_shape: float, prior_rate: float) -> tuple[float, float]:
    """(shape, rate) of the Gamma posterior of outcomes per unit of exposure."""
    return prior_shape + max(outcomes, 0.0), prior_rate + max(exposure, 0.0)


def gamma_rate_interval(
    outcomes: float, exposure: float, prior_shape: float, prior_rate: float, level: float
) -> tuple[float, float, float]:
    """(lower, mean, upper) of outcomes per unit of exposure, a central ``level`` interval."""
    shape, rate = posterior(outcomes, exposure, prior_shape, prior_rate)
    tail = (1 - level) / 2
    lo, hi = stats.gamma.ppf([tail, 1 - tail], shape, scale=1 / rate)
    return float(f"{lo:.6g}"), float(f"{shape / rate:.6g}"), float(f"{hi:.6g}")


def draw(
    outcomes: float, exposure: float, prior_shape: float, prior_rate: float, size: int, rng: np.random.Generator
) -> np.ndarray:
    """``size`` draws of outcomes per unit of exposure from the posterior."""
    shape, rate = posterior(outcomes, exposure, prior_shape, prior_rate)
    return rng.gamma(shape, 1 / rate, size)
