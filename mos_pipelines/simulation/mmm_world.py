"""A weekly marketing-mix world with known truth, for the MMM recovery harness and the MMM tests.

Ad spend drives the outcome (revenue, USD) through a known geometric adstock and logistic saturation per channel,
on top of a baseline with a trend, yearly seasonality and noise, in each region. A channel's curve is shared by the
regions (the regions differ in baseline and spend); the truth keeps each channel's contribution, ROI and marginal
ROI at the simulated spend. Two spend regimes: ``flighted`` (campaigns switch on and off, spend varies a lot) and
``steady`` (always-on spend with ±20 % weekly noise, the hard case for any MMM).

Separate from the daily world (``world.py``), whose default output stays byte-identical."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mos_pipelines.mmm.curves import geometric_adstock, logistic_saturation

CHANNELS = ("paid_search", "paid_social", "display", "video", "affiliate", "offline")
REGIONS = ("NA", "EU", "APAC", "LATAM")
REGIMES = ("flighted", "steady")
START = datetime.date(2024, 1, 1)  # a Monday


@dataclass(frozen=True)
class ChannelTruth:
    channel: str
    alpha: float  # geometric adstock decay
    scale_usd: float  # saturation acts on adstocked weekly spend / scale_usd, with λ = 1
    beta_usd: float  # weekly contribution at full saturation, in each region


@dataclass
class MmmWorld:
    seed: int
    regime: str
    channels: list[ChannelTruth]
    spend: pd.DataFrame  # week_start, region, channel, spend_usd
    outcome: pd.DataFrame  # week_start, region, revenue_usd
    contributions: pd.DataFrame  # week_start, region, channel, contribution_usd
    truth: pd.DataFrame  # per channel: alpha, scale_usd, beta_usd, spend_usd, contribution_usd, roi, marginal_roi

    def cube(self) -> np.ndarray:
        """Spend as an array (weeks, regions, channels)."""
        pivot = self.spend.pivot_table(
            index=["week_start", "region"], columns="channel", values="spend_usd", sort=False
        ).reindex(columns=[c.channel for c in self.channels])
        weeks = self.spend["week_start"].nunique()
        return pivot.to_numpy().reshape(weeks, -1, len(self.channels))

    def channel_contribution(self, spend: np.ndarray) -> np.ndarray:
        """True contribution per (week, region, channel) of a spend array of the same shape."""
        alpha = np.array([c.alpha for c in self.channels])
        scale = np.array([c.scale_usd for c in self.channels])
        beta = np.array([c.beta_usd for c in self.channels])
        return beta * logistic_saturation(geometric_adstock(spend, alpha) / scale, 1.0)

    def steady_outcome(self, weekly_spend: np.ndarray, channels: list[str] | None = None) -> float:
        """True weekly contribution of a constant spend per (region, channel), summed (carry-over at steady state);
        the last axis follows ``channels`` (default: the world's channel order)."""
        order = {c.channel: c for c in self.channels}
        chosen = [order[n] for n in channels] if channels is not None else self.channels
        scale = np.array([c.scale_usd for c in chosen])
        beta = np.array([c.beta_usd for c in chosen])
        return float((beta * logistic_saturation(np.asarray(weekly_spend) / scale, 1.0)).sum())

    def write_truth(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.truth.to_parquet(directory / "mmm_channels.parquet", index=False)
        self.contributions.to_parquet(directory / "mmm_contributions.parquet", index=False)


def generate(
    seed: int, regime: str = "flighted", weeks: int = 104, n_regions: int = 4, n_channels: int = 6
) -> MmmWorld:
    """A seeded weekly world: same arguments, same frames."""
    if regime not in REGIMES:
        raise ValueError(f"regime {regime!r}: expected one of {', '.join(REGIMES)}")
    g = np.random.default_rng([seed, REGIMES.index(regime), 2026])
    regions = REGIONS[:n_regions]
    names = CHANNELS[:n_channels]
    region_size = g.uniform(0.5, 1.5, n_regions)
    mean_spend = g.uniform(3_000, 20_000, n_channels)  # per region-week, before region size
    roi_target = g.uniform(0.4, 4.0, n_channels)
    saturation_at_mean = g.uniform(0.5, 1.6, n_channels)  # mean spend / scale: mildly to strongly saturated
    scale = mean_spend / saturation_at_mean
    beta = roi_target * mean_spend / logistic_saturation(saturation_at_mean, 1.0)
    alpha = g.uniform(0.05, 0.7, n_channels)
    channels = [ChannelTruth(n, float(a), float(s), float(b)) for n, a, s, b in zip(names, alpha, scale, beta)]

    # spend (weeks, regions, channels)
    level = mean_spend[None, None, :] * region_size[None, :, None]
    if regime == "flighted":
        on = g.random((weeks, 1, n_channels)) < 0.7
        burst = g.lognormal(0.0, 0.5, (weeks, 1, n_channels))
        spend = level * np.where(on, burst / 0.7, 0.0) * g.lognormal(0.0, 0.15, (weeks, n_regions, n_channels))
    else:
        spend = level * g.lognormal(0.0, 0.2, (weeks, n_regions, n_channels))
    spend = np.round(spend, 2)

    t = np.arange(weeks)
    base = 60_000 * region_size[None, :] * (1 + 0.10 * t[:, None] / 52)
    season = 1 + 0.12 * np.sin(2 * np.pi * t / 52.18)[:, None] + 0.05 * np.cos(4 * np.pi * t / 52.18)[:, None]
    baseline = base * season
    world = MmmWorld(seed, regime, channels, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    contrib = world.channel_contribution(spend)
    noise = g.normal(0.0, 0.04 * baseline)
    revenue = baseline + contrib.sum(axis=2) + noise

    dates = [(START + datetime.timedelta(weeks=int(w))) for w in t]
    idx = pd.MultiIndex.from_product([dates, regions, names], names=["week_start", "region", "channel"])
    world.spend = pd.DataFrame({"spend_usd": spend.reshape(-1)}, index=idx).reset_index()
    world.contributions = pd.DataFrame({"contribution_usd": contrib.reshape(-1)}, index=idx).reset_index()
    ridx = pd.MultiIndex.from_product([dates, regions], names=["week_start", "region"])
    world.outcome = pd.DataFrame({"revenue_usd": np.round(revenue.reshape(-1), 2)}, index=ridx).reset_index()

    total_spend = spend.sum(axis=(0, 1))
    total_contrib = contrib.sum(axis=(0, 1))
    eps = 0.01
    marginal = (world.channel_contribution(spend * (1 + eps)).sum(axis=(0, 1)) - total_contrib) / (eps * total_spend)
    world.truth = pd.DataFrame(
        {
            "channel": names,
            "alpha": alpha,
            "scale_usd": scale,
            "beta_usd": beta,
            "spend_usd": total_spend,
            "contribution_usd": total_contrib,
            "roi": total_contrib / total_spend,
            "marginal_roi": marginal,
        }
    )
    return world
