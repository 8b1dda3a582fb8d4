"""The two response transformations of the marketing mix model, in NumPy (no PyMC): geometric adstock
(carry-over) and logistic saturation, with the conventions PyMC-Marketing uses (adstock weights normalised to
sum 1; saturation ``(1 - e^(-λx)) / (1 + e^(-λx))`` on spend divided by the channel's scale).

Both work on arrays whose first axis is time; ``alpha``/``lam`` broadcast over the remaining axes."""

from __future__ import annotations

import numpy as np

L_MAX = 8  # weeks of carry-over kept


def adstock_weights(alpha: np.ndarray | float, l_max: int = L_MAX) -> np.ndarray:
    """Normalised weights ``alpha^l / Σ alpha^l`` for lags 0..l_max-1; shape ``(l_max, *alpha.shape)``."""
    a = np.asarray(alpha, dtype=float)
    lags = np.arange(l_max).reshape((l_max,) + (1,) * a.ndim)
    w = a[None, ...] ** lags
    return w / w.sum(axis=0, keepdims=True)


def geometric_adstock(x: np.ndarray, alpha: np.ndarray | float, l_max: int = L_MAX) -> np.ndarray:
    """Carry-over along axis 0: ``y_t = Σ_l w_l x_{t-l}`` (spend before the first row counts as 0).

    ``alpha`` broadcasts against ``x[0]`` (e.g. one decay per channel on the last axis)."""
    x = np.asarray(x, dtype=float)
    w = adstock_weights(alpha, l_max)
    out = np.zeros(np.broadcast_shapes(x.shape, (1,) + np.shape(alpha)))
    for lag in range(l_max):
        if lag >= x.shape[0]:
            break
        shifted = np.zeros_like(x)
        shifted[lag:] = x[: x.shape[0] - lag]
        out = out + w[lag] * shifted
    return out


def logistic_saturation(x: np.ndarray, lam: np.ndarray | float) -> np.ndarray:
    """``(1 - e^(-λx)) / (1 + e^(-λx))``: 0 at 0, slope λ/2 there, tends to 1."""
    e = np.exp(-np.asarray(lam, dtype=float) * np.asarray(x, dtype=float))
    return (1 - e) / (1 + e)


def response(x: np.ndarray, alpha, lam, beta, scale) -> np.ndarray:
    """A channel's contribution per row: ``beta · saturation(adstock(x) / scale, lam)`` (x in dollars)."""
    return np.asarray(beta) * logistic_saturation(geometric_adstock(x, alpha) / np.asarray(scale), lam)


def steady_response(weekly_spend: np.ndarray, lam, beta, scale) -> np.ndarray:
    """Contribution per week of a constant weekly spend (adstock of a constant, normalised, is the constant)."""
    return np.asarray(beta) * logistic_saturation(np.asarray(weekly_spend) / np.asarray(scale), lam)
