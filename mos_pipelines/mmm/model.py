"""The Bayesian MMM (a PyMC model, sampled by nutpie's NUTS) and its posterior summaries.

y[t, r] = intercept[r] + trend[r]·t + seasonality[r](t) + m[t, r] − mean_t m[t, r] + ε, with the media term
m[t, r] = Σ_c β_c · logistic(adstock(x[t, r, c] / s_c; α_c); λ_c), on spend scaled by each channel's largest week
(s_c) and the outcome scaled by its largest week; t counts years from the middle week. Centring the media term and
the trend leaves the intercept the region's mean level, so it does not trade off against every β (the long NUTS
trajectories of nearly constant spend). A channel's curve
(α, λ, β) is shared by the regions (pooled: one region's few weeks borrow the others'); baseline, trend and
seasonality are per region. Lift measured by holdout experiments enters as extra observations of the curve
(``LiftTest``). Everything after the fit (contributions, ROI, marginal ROI, response curves) is computed in NumPy
from the posterior draws of (α, λ, β), which are also what the budget optimizer reads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mos_pipelines.mmm.curves import L_MAX, geometric_adstock, logistic_saturation
from mos_pipelines.mmm.data import WeeklyData

PERIOD_WEEKS = 52.18
SAMPLERS = ("nutpie", "pymc")
CURVE_MULTIPLES = tuple(np.round(np.linspace(0.0, 2.0, 21), 2))


class FitError(RuntimeError):
    """The sampler could not run (the message says why)."""


@dataclass(frozen=True)
class Settings:
    draws: int = 1000
    tune: int = 500
    chains: int = 2
    cores: int = 2
    target_accept: float = 0.9
    # nutpie (Rust NUTS on the model compiled by numba) with its low-rank mass matrix, which learns the few
    # correlated directions (β–λ of nearly constant spend): 10-30x faster than PyMC's own NUTS on this model
    # (docs/DECISIONS.md, Marketing mix model); "pymc" is PyMC's sampler (C backend)
    sampler: str = "nutpie"
    low_rank_mass_matrix: bool = True
    seed: int = 20261206
    fourier_order: int = 2
    interval: float = 0.9
    # priors (scaled units): α ~ Beta(a, b), λ ~ Gamma(k, θ=1/rate), β ~ HalfNormal(σ)
    alpha_prior: tuple[float, float] = (1.0, 3.0)
    lam_prior: tuple[float, float] = (3.0, 1.0)
    beta_sigma: float = 2.0
    # convergence gate
    max_rhat: float = 1.05
    min_ess: float = 100.0
    max_divergence_share: float = 0.01


def settings_from_env(environ: dict[str, str] | None = None) -> Settings:
    """Defaults, with the sampler's size overridable by ``MOS_MMM_DRAWS``, ``MOS_MMM_TUNE``, ``MOS_MMM_CHAINS``,
    ``MOS_MMM_CORES``, the ESS gate by ``MOS_MMM_MIN_ESS`` (a quick look, or the tests' tiny fits) and the sampler
    by ``MOS_MMM_SAMPLER`` (``nutpie`` or ``pymc``)."""
    import os

    env = os.environ if environ is None else environ
    values: dict[str, float | str] = {}
    sampler = env.get("MOS_MMM_SAMPLER")
    if sampler:
        if sampler not in SAMPLERS:
            raise ValueError(f"MOS_MMM_SAMPLER={sampler!r}: expected one of {', '.join(SAMPLERS)}")
        values["sampler"] = sampler
    for name, kind in (("draws", int), ("tune", int), ("chains", int), ("cores", int), ("min_ess", float)):
        raw = env.get(f"MOS_MMM_{name.upper()}")
        if raw:
            try:
                values[name] = kind(raw)
            except ValueError:
                raise ValueError(f"MOS_MMM_{name.upper()}={raw!r}: expected a {kind.__name__} number") from None
            if float(values[name]) < 1:
                raise ValueError(f"MOS_MMM_{name.upper()}={raw!r}: expected at least 1")
    return Settings(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LiftTest:
    """A measured lift: spending ``weekly_spend_usd`` a week (all regions) on ``channel`` for ``weeks`` weeks
    brought ``lift`` outcome (± ``lift_sd``) over spending nothing on it."""

    channel: str
    weekly_spend_usd: float
    weeks: float
    lift: float
    lift_sd: float
    source: str = ""


@dataclass
class Posterior:
    """Draws of each channel's curve, in dollars: contribution per region-week = beta_usd · logistic(adstock(x) /
    scale_usd · lam) — what the optimizer and the summaries need, free of PyMC."""

    channels: list[str]
    regions: list[str]
    alpha: np.ndarray  # (draws, channels)
    lam: np.ndarray  # (draws, channels), on spend / scale_usd
    beta_usd: np.ndarray  # (draws, channels)
    scale_usd: np.ndarray  # (channels,)
    region_mix: np.ndarray  # (channels, regions)

    def contributions(self, spend: np.ndarray) -> np.ndarray:
        """(draws, weeks, regions, channels) contributions of a spend cube (weeks, regions, channels)."""
        out = np.empty((self.alpha.shape[0],) + spend.shape)
        for d in range(self.alpha.shape[0]):
            ad = geometric_adstock(spend / self.scale_usd, self.alpha[d])
            out[d] = self.beta_usd[d] * logistic_saturation(ad, self.lam[d])
        return out

    def steady_weekly(self, weekly_spend: np.ndarray) -> np.ndarray:
        """(draws, channels) contribution per week of a constant weekly spend per channel (all regions, split by
        the channel's historical region mix; carry-over at steady state)."""
        x = np.asarray(weekly_spend, dtype=float)[:, None] * self.region_mix / self.scale_usd[:, None]  # (C, R)
        sat = logistic_saturation(x[None, :, :], self.lam[:, :, None])  # (D, C, R)
        return self.beta_usd * sat.sum(axis=2)


@dataclass
class FitResult:
    data: WeeklyData
    settings: Settings
    posterior: Posterior
    fit_seconds: float
    diagnostics: dict[str, Any]  # max_rhat, min_ess_bulk, divergences, samples (floats); worst_* (names)
    parameters: pd.DataFrame
    channel_roi: pd.DataFrame
    region_contributions: pd.DataFrame
    response_curves: pd.DataFrame
    fitted: pd.DataFrame  # week_start, region, actual, fitted mean
    lift_tests: list[LiftTest] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return not self.convergence_problems()

    def convergence_problems(self) -> list[str]:
        s, d = self.settings, self.diagnostics
        out = []
        if d["max_rhat"] > s.max_rhat:
            out.append(f"r-hat {d['max_rhat']:.3f} > {s.max_rhat} ({d['worst_rhat_parameter']})")
        if d["min_ess_bulk"] < s.min_ess:
            out.append(f"bulk ESS {d['min_ess_bulk']:.0f} < {s.min_ess:.0f} ({d['worst_ess_parameter']})")
        if d["divergences"] > s.max_divergence_share * d["samples"]:
            out.append(
                f"{d['divergences']:.0f} divergent transitions of {d['samples']:.0f} "
                f"(> {100 * s.max_divergence_share:g} %)"
            )
        return out


def _fourier(n: int, order: int) -> np.ndarray:
    t = np.arange(n)[:, None]
    k = np.arange(1, order + 1)[None, :]
    return np.concatenate([np.sin(2 * np.pi * k * t / PERIOD_WEEKS), np.cos(2 * np.pi * k * t / PERIOD_WEEKS)], 1)


def _trend(n: int) -> np.ndarray:
    """Years from the middle week (centred, so the trend does not trade off against the intercept)."""
    return (np.arange(n) - (n - 1) / 2) / PERIOD_WEEKS


def _lagged(x: np.ndarray) -> np.ndarray:
    """(L_MAX, T, R, C): ``x`` shifted by 0..L_MAX-1 weeks along its first axis (zeros before the first week), so
    the adstock in the model is one weighted sum over a constant instead of L_MAX concatenations."""
    out = np.zeros((L_MAX,) + x.shape)
    for lag in range(L_MAX):
        out[lag, lag:] = x[: x.shape[0] - lag] if lag < x.shape[0] else 0.0
    return out


@dataclass
class _Built:
    model: Any
    scale: np.ndarray
    y_scale: float
    trend: np.ndarray
    fourier: np.ndarray


def build_model(data: WeeklyData, settings: Settings, lift_tests: list[LiftTest]) -> _Built:
    """The PyMC model of ``data`` (scaled units; see the module's docstring)."""
    import pymc as pm
    import pytensor.tensor as pt

    T, R, C = data.spend.shape
    scale = data.spend.max(axis=(0, 1))
    y_scale = float(np.abs(data.outcome).max()) or 1.0
    x = data.spend / scale
    y = data.outcome / y_scale
    fourier = _fourier(T, settings.fourier_order)
    trend = _trend(T)
    mix = data.region_mix()
    coords = {"region": data.regions, "channel": data.channels, "fourier": list(range(fourier.shape[1]))}
    a0, b0 = settings.alpha_prior
    k0, rate0 = settings.lam_prior
    lagged = pt.as_tensor(_lagged(x))
    with pm.Model(coords=coords) as model:
        alpha = pm.Beta("adstock_alpha", a0, b0, dims="channel")
        lam = pm.Gamma("saturation_lam", alpha=k0, beta=rate0, dims="channel")
        beta = pm.HalfNormal("saturation_beta", sigma=settings.beta_sigma, dims="channel")
        intercept = pm.Normal("intercept", mu=y.mean(axis=0), sigma=0.5, dims="region")
        slope = pm.Normal("trend", 0.0, 0.2, dims="region")
        season = pm.Normal("season", 0.0, 0.1, dims=("region", "fourier"))
        sigma = pm.HalfNormal("sigma", 0.1, dims="region")
        weights = alpha[None, :] ** pt.arange(L_MAX)[:, None]  # (L, C), normalised geometric adstock
        weights = weights / weights.sum(axis=0, keepdims=True)
        adstocked = (lagged * weights[:, None, None, :]).sum(axis=0)  # (T, R, C)
        e = pt.exp(-lam * adstocked)
        media = (beta * (1 - e) / (1 + e)).sum(axis=2)
        # media centred on its mean week per region (and the trend on the middle week): the intercept is the
        # region's mean level whatever the channels' sizes, instead of trading off against every β
        mu = intercept + slope * trend[:, None] + pt.dot(fourier, season.T) + media - media.mean(axis=0)
        # the baseline's mean level (intercept less the mean media) may not go below 0: on spend too flat to tell
        # the channels' sizes, the media would otherwise take more than the whole outcome (soft, 2 % of the top week)
        level = intercept - media.mean(axis=0)
        pm.Potential("baseline_not_negative", -0.5 * ((pt.minimum(level, 0.0) / 0.02) ** 2).sum())
        pm.Normal("y", mu=mu, sigma=sigma, observed=y)
        for i, test in enumerate(lift_tests):
            c = data.channels.index(test.channel)
            xs = test.weekly_spend_usd * mix[c] / scale[c]
            el = pt.exp(-lam[c] * xs)
            predicted = test.weeks * beta[c] * ((1 - el) / (1 + el)).sum()
            pm.Normal(f"lift_{i}", mu=predicted, sigma=max(test.lift_sd, 1e-9) / y_scale, observed=test.lift / y_scale)
    return _Built(model, scale, y_scale, trend, fourier)


def _sample(built: _Built, settings: Settings):
    import pymc as pm

    kwargs: dict[str, Any] = {}
    if settings.sampler == "nutpie":
        kwargs["nuts_sampler_kwargs"] = {
            "cores": settings.cores,
            "save_warmup": False,
            "low_rank_modified_mass_matrix": settings.low_rank_mass_matrix,
        }
    elif settings.sampler not in SAMPLERS:
        raise FitError(f"MMM sampler {settings.sampler!r}: expected one of {', '.join(SAMPLERS)}")
    with built.model:
        return pm.sample(
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=settings.cores,
            target_accept=settings.target_accept,
            random_seed=settings.seed,
            progressbar=False,
            compute_convergence_checks=False,
            nuts_sampler=settings.sampler,
            **kwargs,
        )


def fit(data: WeeklyData, settings: Settings = Settings(), lift_tests: list[LiftTest] | None = None) -> FitResult:
    """Sample the posterior; raises ``FitError`` when the sampler cannot run."""
    import arviz as az

    lift_tests = [t for t in (lift_tests or []) if t.channel in data.channels]
    T, R, C = data.spend.shape
    mix = data.region_mix()
    started = time.perf_counter()
    built = build_model(data, settings, lift_tests)
    scale, y_scale, trend, fourier = built.scale, built.y_scale, built.trend, built.fourier
    try:
        idata = _sample(built, settings)
    except Exception as exc:  # the sampler's own errors (a bad initial point, compilation) become a reason
        raise FitError(f"the sampler failed: {type(exc).__name__}: {exc}") from exc
    seconds = time.perf_counter() - started
    del built

    post = idata.posterior
    stack = lambda name: post[name].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()  # noqa: E731
    posterior = Posterior(
        list(data.channels),
        list(data.regions),
        stack("adstock_alpha"),
        stack("saturation_lam"),
        stack("saturation_beta") * y_scale,
        scale,
        mix,
    )
    names = ["adstock_alpha", "saturation_lam", "saturation_beta", "intercept", "trend", "season", "sigma"]
    rhat = az.rhat(idata, var_names=names)
    ess = az.ess(idata, var_names=names, method="bulk")
    worst_r = max(names, key=lambda n: float(rhat[n].max()))
    worst_e = min(names, key=lambda n: float(ess[n].min()))
    divergences = float(idata.sample_stats["diverging"].sum())
    diagnostics = {
        "max_rhat": float(rhat[worst_r].max()),
        "worst_rhat_parameter": worst_r,
        "min_ess_bulk": float(ess[worst_e].min()),
        "worst_ess_parameter": worst_e,
        "divergences": divergences,
        "samples": float(settings.draws * settings.chains),
    }
    fitted_mean = (
        post["intercept"].mean(("chain", "draw")).to_numpy()[None, :]
        + post["trend"].mean(("chain", "draw")).to_numpy()[None, :] * trend[:, None]
        + fourier @ post["season"].mean(("chain", "draw")).to_numpy().T
    ) * y_scale
    contrib = posterior.contributions(data.spend)
    media = contrib.sum(axis=3)  # (draws, weeks, regions); the model adds it centred on its mean week
    fitted_mean = fitted_mean + (media - media.mean(axis=1, keepdims=True)).mean(axis=0)
    fitted = pd.DataFrame(
        {
            "week_start": np.repeat(np.array(data.weeks, dtype=object), R),
            "region": np.tile(data.regions, T),
            "actual": data.outcome.reshape(-1),
            "fitted": fitted_mean.reshape(-1),
        }
    )
    parameters = _parameters(posterior, rhat, ess, settings.interval)
    roi, regions = _roi(posterior, data, contrib, settings.interval)
    curves = response_curves(posterior, data.spend.sum(axis=1).mean(axis=0), settings.interval)
    return FitResult(
        data, settings, posterior, seconds, diagnostics, parameters, roi, regions, curves, fitted, lift_tests
    )


def _q(a: np.ndarray, interval: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - interval) / 2
    return np.quantile(a, tail, axis=axis), np.quantile(a, 1 - tail, axis=axis)


def _parameters(p: Posterior, rhat, ess, interval: float) -> pd.DataFrame:
    rows = []
    values = {"adstock_alpha": p.alpha, "saturation_lam": p.lam, "saturation_beta_usd": p.beta_usd}
    half = np.log(3) / p.lam * p.scale_usd  # weekly spend (one region) at half saturation: logistic = 1/2
    values["half_saturation_spend_usd"] = half
    for name, draws in values.items():
        lo, hi = _q(draws, interval)
        var = {"saturation_beta_usd": "saturation_beta", "half_saturation_spend_usd": "saturation_lam"}.get(name, name)
        for c, channel in enumerate(p.channels):
            rows.append(
                {
                    "channel": channel,
                    "parameter": name,
                    "mean": float(draws[:, c].mean()),
                    "lower": float(lo[c]),
                    "upper": float(hi[c]),
                    "r_hat": float(rhat[var].sel(channel=channel)),
                    "ess_bulk": float(ess[var].sel(channel=channel)),
                }
            )
    return pd.DataFrame(rows)


def _roi(p: Posterior, data: WeeklyData, contrib: np.ndarray, interval: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    spend = data.spend.sum(axis=(0, 1))
    total = contrib.sum(axis=(1, 2))  # (D, C)
    eps = 0.01
    bumped = p.contributions(data.spend * (1 + eps)).sum(axis=(1, 2))
    marginal = (bumped - total) / (eps * spend)
    roi = total / spend
    lo_c, hi_c = _q(total, interval)
    lo_r, hi_r = _q(roi, interval)
    lo_m, hi_m = _q(marginal, interval)
    channel_roi = pd.DataFrame(
        {
            "channel": p.channels,
            "spend_usd": spend,
            "contribution_mean": total.mean(axis=0),
            "contribution_lower": lo_c,
            "contribution_upper": hi_c,
            "contribution_share": total.mean(axis=0) / data.outcome.sum(),
            "roi_mean": roi.mean(axis=0),
            "roi_lower": lo_r,
            "roi_upper": hi_r,
            "marginal_roi_mean": marginal.mean(axis=0),
            "marginal_roi_lower": lo_m,
            "marginal_roi_upper": hi_m,
        }
    )
    by_region = contrib.sum(axis=1)  # (D, R, C)
    lo, hi = _q(by_region, interval)
    rows = []
    for r, region in enumerate(p.regions):
        for c, channel in enumerate(p.channels):
            rows.append(
                {
                    "region": region,
                    "channel": channel,
                    "spend_usd": float(data.spend[:, r, c].sum()),
                    "contribution_mean": float(by_region[:, r, c].mean()),
                    "contribution_lower": float(lo[r, c]),
                    "contribution_upper": float(hi[r, c]),
                }
            )
    return channel_roi, pd.DataFrame(rows)


def response_curves(p: Posterior, mean_weekly_spend: np.ndarray, interval: float = 0.9) -> pd.DataFrame:
    """Weekly contribution (steady state, all regions) at multiples of each channel's mean weekly spend."""
    rows = []
    for m in CURVE_MULTIPLES:
        weekly = mean_weekly_spend * m
        draws = p.steady_weekly(weekly)
        lo, hi = _q(draws, interval)
        for c, channel in enumerate(p.channels):
            rows.append(
                {
                    "channel": channel,
                    "spend_multiple": float(m),
                    "weekly_spend_usd": float(weekly[c]),
                    "weekly_contribution_mean": float(draws[:, c].mean()),
                    "weekly_contribution_lower": float(lo[c]),
                    "weekly_contribution_upper": float(hi[c]),
                }
            )
    return pd.DataFrame(rows)
