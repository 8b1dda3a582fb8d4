"""Channel budget allocation by Thompson sampling over each channel's return per dollar.

Per channel, over the lookback window of ``fct_channel_performance``: cost C, attributed
conversions K and revenue R. Return per dollar ρ = λ · μ with
- λ, conversions per dollar: Gamma–Poisson, posterior Gamma(1 + K, CPA₀ + C) — the prior is one
  pseudo-conversion at the pooled cost per conversion CPA₀ of all configured channels;
- μ, revenue per conversion: conversion values ~ Gamma(shape 2, rate θ) with θ's conjugate posterior
  Gamma(1 + 2(1 + K), m₀ + R), i.e. one pseudo-conversion at the pooled value m₀.
ROI = ρ − 1. The target share is P(channel has the highest ρ); the new share is the target projected
onto the floor, per-channel min/max shares and the daily change cap (``bandit.constrain``).
Returns are assumed linear in spend over one period (no saturation): the floor, the caps and the
daily change limit keep the allocation from betting everything on one posterior.
"""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import pandas as pd

from mos_pipelines.configuration.experiments import BudgetSettings
from mos_pipelines.experiments import bandit

VALUE_SHAPE = 2.0
BUDGET_COLUMNS = [
    "allocation_date",
    "channel",
    "period_days",
    "budget_total_usd",
    "lookback_start",
    "lookback_end",
    "cost_usd",
    "conversions",
    "revenue_usd",
    "return_per_dollar_mean",
    "roi_mean",
    "roi_lower",
    "roi_upper",
    "prob_best",
    "previous_share",
    "target_share",
    "new_share",
    "reason",
    "budget_usd",
    "expected_return_usd",
    "expected_return_lower",
    "expected_return_upper",
    "days_since_previous",
    "config_fingerprint",
]


def channel_totals(con, settings: BudgetSettings) -> tuple[pd.DataFrame, datetime.date | None]:
    """Cost, conversions and revenue per configured channel over the lookback window, and its last day."""
    end = con.execute("select max(date_day) from marts.fct_channel_performance").fetchall()[0][0]
    if end is None:
        return pd.DataFrame(columns=["channel", "cost_usd", "conversions", "revenue_usd"]), None
    start = end - datetime.timedelta(days=settings.lookback_days - 1)
    frame = con.execute(
        """select channel, sum(cost_usd) as cost_usd, sum(conversions) as conversions, sum(revenue_usd) as revenue_usd
        from marts.fct_channel_performance where date_day between ? and ? group by channel""",
        [start, end],
    ).df()
    totals = frame.set_index("channel").reindex(list(settings.channels)).fillna(0.0).reset_index()
    return totals.rename(columns={"index": "channel"}), end


def _previous_split(
    previous: pd.DataFrame, channels: Any, cost: np.ndarray, allocation_date: datetime.date
) -> tuple[np.ndarray, int]:
    """The shares the allocation moves from (the last allocation's, else today's cost split, else even) and the days
    since that allocation (1 without one): the daily-change cap is per day."""
    if previous.empty:
        prev = cost / cost.sum() if cost.sum() > 0 else np.full(len(channels), 1 / len(channels))
        return prev, 1
    prev = bandit.previous_shares(channels, dict(zip(previous["channel"], previous["new_share"])))
    return prev, max(1, (allocation_date - pd.Timestamp(previous["allocation_date"].max()).date()).days)


def _allocation_rows(
    settings: BudgetSettings,
    allocation_date: datetime.date,
    lookback_end: datetime.date,
    channels: Any,
    returns: np.ndarray,
    expected: np.ndarray,
    days: Any,
    config_fingerprint: str,
    **columns: Any,
) -> pd.DataFrame:
    """One allocation row per channel: the window and settings, the ROI interval from ``returns`` (draws × channels,
    return per dollar) and the expected return's interval from ``expected`` (draws × channels, dollars), with
    ``columns`` (the method's own: cost, conversions, shares, reasons, …)."""
    return pd.DataFrame(
        {
            "allocation_date": allocation_date,
            "channel": channels,
            "period_days": settings.period_days,
            "budget_total_usd": settings.total_usd,
            "lookback_start": lookback_end - datetime.timedelta(days=settings.lookback_days - 1),
            "lookback_end": lookback_end,
            "return_per_dollar_mean": returns.mean(axis=0),
            "roi_mean": returns.mean(axis=0) - 1,
            "roi_lower": np.quantile(returns, 0.025, axis=0) - 1,
            "roi_upper": np.quantile(returns, 0.975, axis=0) - 1,
            "expected_return_usd": expected.mean(axis=0),
            "expected_return_lower": np.quantile(expected, 0.025, axis=0),
            "expected_return_upper": np.quantile(expected, 0.975, axis=0),
            "days_since_previous": days,
            "config_fingerprint": config_fingerprint,
            **columns,
        }
    )[BUDGET_COLUMNS]


def allocate_budget(
    totals: pd.DataFrame,
    previous: pd.DataFrame,
    settings: BudgetSettings,
    allocation_date: datetime.date,
    lookback_end: datetime.date,
    config_fingerprint: str = "",
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Budget rows per channel and the portfolio's expected return with a 95 % interval.

    ``previous``: the latest earlier allocation (channel, new_share, allocation_date); without one,
    the status quo is the observed cost mix of the lookback window (equal shares if nothing was spent).
    """
    channels = list(settings.channels)
    t = totals.set_index("channel").reindex(channels).fillna(0.0)
    cost = t["cost_usd"].to_numpy(dtype=float)
    conversions = t["conversions"].to_numpy(dtype=float)
    revenue = t["revenue_usd"].to_numpy(dtype=float)
    pooled_cpa = cost.sum() / conversions.sum() if conversions.sum() > 0 else max(cost.sum(), 1.0)
    pooled_value = revenue.sum() / conversions.sum() if conversions.sum() > 0 else 1.0
    generator = bandit.seeded_rng(settings.random_seed, "budget", allocation_date)
    draws = settings.draws
    lam = generator.gamma(1 + conversions, 1 / (pooled_cpa + cost), size=(draws, len(channels)))
    theta_a = 1 + VALUE_SHAPE * (1 + conversions)
    theta_b = pooled_value + revenue
    mu = VALUE_SHAPE / generator.gamma(theta_a, 1 / theta_b, size=(draws, len(channels)))
    rho = lam * mu
    rho_mean = (1 + conversions) / (pooled_cpa + cost) * VALUE_SHAPE * theta_b / (theta_a - 1)
    p_best = bandit.prob_best(rho)

    prev, days = _previous_split(previous, channels, cost, allocation_date)
    low, high = settings.bounds()
    result = bandit.constrain(
        p_best,
        prev,
        settings.floor,
        settings.max_daily_change * days,
        min_share=np.asarray(low),
        max_share=np.asarray(high),
    )
    shares = result.shares
    budget = shares * settings.total_usd
    portfolio = (rho * budget).sum(axis=1)
    rows = _allocation_rows(
        settings,
        allocation_date,
        lookback_end,
        channels,
        rho,
        budget * rho,
        days,
        config_fingerprint,
        cost_usd=cost,
        conversions=conversions,
        revenue_usd=revenue,
        prob_best=p_best,
        previous_share=prev,
        target_share=p_best,
        new_share=shares,
        reason=result.reasons,
        budget_usd=budget,
    )
    summary = {
        "budget_usd": float(settings.total_usd),
        "expected_return_usd": float((budget * rho_mean).sum()),
        "expected_return_lower": float(np.quantile(portfolio, 0.025)),
        "expected_return_upper": float(np.quantile(portfolio, 0.975)),
    }
    return rows, summary


def allocate_budget_mmm(
    totals: pd.DataFrame,
    previous: pd.DataFrame,
    settings: BudgetSettings,
    allocation_date: datetime.date,
    lookback_end: datetime.date,
    posterior,  # mos_pipelines.mmm.model.Posterior covering every configured channel
    fit_note: str,
    config_fingerprint: str = "",
) -> tuple[pd.DataFrame, dict[str, float | str]]:
    """The split maximising the expected return under the MMM's fitted curves (saturation and carry-over), within
    the floor, min/max shares and the daily change cap; same columns as ``allocate_budget``. ROI columns are the
    posterior's marginal return per dollar at the new split (− 1), the expected return its outcome with a 95 %
    interval; ``prob_best`` is the share of draws in which the channel has the highest marginal return."""
    from mos_pipelines.mmm.optimize import optimize, outcome_draws

    channels = list(settings.channels)
    idx = [posterior.channels.index(c) for c in channels]
    sub = type(posterior)(
        channels,
        posterior.regions,
        posterior.alpha[:, idx],
        posterior.lam[:, idx],
        posterior.beta_usd[:, idx],
        posterior.scale_usd[idx],
        posterior.region_mix[idx],
    )
    t = totals.set_index("channel").reindex(channels).fillna(0.0)
    cost = t["cost_usd"].to_numpy(dtype=float)
    prev, days = _previous_split(previous, channels, cost, allocation_date)
    low, high = settings.bounds()
    low = np.minimum(np.asarray(low), 1.0 / len(channels))  # as bandit.constrain: the floor never exceeds 1/K
    weeks = settings.period_days / 7
    split = optimize(
        sub, settings.total_usd, weeks, low, np.asarray(high), prev, settings.max_daily_change * days, 0.95
    )
    shares = split.shares
    budget = shares * settings.total_usd
    draws = outcome_draws(sub, shares, settings.total_usd, weeks)  # (D, C)
    # marginal return per dollar at the new split: the next 1 % of each channel's budget
    bumped = outcome_draws(sub, shares * 1.01, settings.total_usd, weeks)
    marginal = (bumped - draws) / np.maximum(0.01 * budget, 1e-9)
    p_best = np.bincount(marginal.argmax(axis=1), minlength=len(channels)) / marginal.shape[0]
    reasons = []
    for c, s in enumerate(shares):
        if s <= split.lower_bound[c] + 1e-6:
            reasons.append(f"mmm optimum at its lower bound {split.lower_bound[c]:.3f}")
        elif s >= split.upper_bound[c] - 1e-6:
            reasons.append(f"mmm optimum at its upper bound {split.upper_bound[c]:.3f}")
        else:
            reasons.append("mmm optimum: marginal returns equalised")
    rows = _allocation_rows(
        settings,
        allocation_date,
        lookback_end,
        channels,
        marginal,
        draws,
        days,
        config_fingerprint,
        cost_usd=cost,
        conversions=t["conversions"].to_numpy(dtype=float),
        revenue_usd=t["revenue_usd"].to_numpy(dtype=float),
        prob_best=p_best,
        previous_share=prev,
        target_share=shares,
        new_share=shares,
        reason=reasons,
        budget_usd=budget,
    )
    summary: dict[str, float | str] = {
        "budget_usd": float(settings.total_usd),
        "expected_return_usd": split.expected,
        "expected_return_lower": split.lower,
        "expected_return_upper": split.upper,
        "method": "mmm",
        "method_reason": f"fitted response curves ({fit_note})"
        + ("; " + "; ".join(split.notes) if split.notes else ""),
    }
    return rows, summary
