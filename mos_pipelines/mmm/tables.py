"""The MMM's warehouse tables.

``ml.mmm_fits`` keeps one row per attempt (fitted, not_converged or skipped, with the reason, the diagnostics and
the model card). The latest attempt's details replace the others': ``ml.mmm_channel_roi`` (contribution, ROI,
marginal ROI with intervals), ``ml.mmm_region_contributions``, ``ml.mmm_response_curves``, ``ml.mmm_parameters``
(adstock and saturation with r-hat and ESS), ``ml.mmm_fitted`` (actual vs fitted per week and region) and
``ml.mmm_posterior`` + ``ml.mmm_region_mix`` (the curve draws the budget optimizer reads). A skipped or
non-converged attempt empties the detail tables, so nothing downstream reads curves that are not trusted."""

from __future__ import annotations

import datetime
import hashlib
import json

import numpy as np
import pandas as pd

from mos_pipelines.mmm.data import WeeklyData
from mos_pipelines.mmm.model import FitResult, Posterior, Settings
from mos_pipelines.warehouse import insert_frame, table_exists, transaction

DDL = """
create schema if not exists ml;
create table if not exists ml.mmm_fits (
    fit_id varchar not null,
    run_id varchar,
    fitted_at timestamptz not null,
    status varchar not null,
    reason varchar,
    outcome varchar,
    weeks integer, first_week date, last_week date,
    channels varchar, regions varchar,
    draws integer, tune integer, chains integer,
    fit_seconds double, max_rhat double, min_ess_bulk double, divergences integer,
    lift_tests integer,
    model_card varchar
);
"""
DETAIL_TABLES = (
    "mmm_channel_roi",
    "mmm_region_contributions",
    "mmm_response_curves",
    "mmm_parameters",
    "mmm_fitted",
    "mmm_posterior",
    "mmm_region_mix",
)


def fit_id(result: FitResult) -> str:
    return data_key(result.data, result.settings, len(result.lift_tests))


def data_key(d: WeeklyData, s: Settings, lift_tests: int = 0) -> str:
    """The id of a fit: the same weekly data, lift tests and sampler settings give the same id (and posterior)."""
    key = json.dumps(
        [
            [str(w) for w in d.weeks],
            d.regions,
            d.channels,
            round(float(d.spend.sum()), 2),
            round(float(d.outcome.sum()), 2),
            [s.draws, s.tune, s.chains, s.seed, s.min_ess, s.sampler, s.low_rank_mass_matrix],
            lift_tests,
        ]
    )
    return "mmm_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _replace(con, table: str, frame: pd.DataFrame) -> None:
    con.register("_mmm_rows", frame)
    try:
        con.execute(f"create or replace table ml.{table} as select * from _mmm_rows")
    finally:
        con.unregister("_mmm_rows")


def _clear(con) -> None:
    for table in DETAIL_TABLES:
        con.execute(f"drop table if exists ml.{table}")


def write_fit(con, result: FitResult, card: str, run_id: str | None, now: datetime.datetime) -> str:
    con.execute(DDL)
    fid = fit_id(result)
    problems = result.convergence_problems()
    status = "fitted" if not problems else "not_converged"
    d, s, g = result.data, result.settings, result.diagnostics
    row = pd.DataFrame(
        [
            {
                "fit_id": fid,
                "run_id": run_id,
                "fitted_at": now,
                "status": status,
                "reason": "; ".join(problems) or None,
                "outcome": d.outcome_name,
                "weeks": len(d.weeks),
                "first_week": d.weeks[0],
                "last_week": d.weeks[-1],
                "channels": ",".join(d.channels),
                "regions": ",".join(d.regions),
                "draws": s.draws,
                "tune": s.tune,
                "chains": s.chains,
                "fit_seconds": result.fit_seconds,
                "max_rhat": g["max_rhat"],
                "min_ess_bulk": g["min_ess_bulk"],
                "divergences": int(g["divergences"]),
                "lift_tests": len(result.lift_tests),
                "model_card": card,
            }
        ]
    )
    p = result.posterior
    draws, n_channels = p.alpha.shape
    posterior = pd.DataFrame(
        {
            "fit_id": fid,
            "draw": np.repeat(np.arange(draws), n_channels),
            "channel": np.tile(p.channels, draws),
            "adstock_alpha": p.alpha.reshape(-1),
            "saturation_lam": p.lam.reshape(-1),
            "beta_usd": p.beta_usd.reshape(-1),
            "scale_usd": np.tile(p.scale_usd, draws),
        }
    )
    mix = pd.DataFrame(
        [
            {"fit_id": fid, "channel": c, "region": r, "share": float(p.region_mix[i, j])}
            for i, c in enumerate(p.channels)
            for j, r in enumerate(p.regions)
        ]
    )
    with transaction(con):
        insert_frame(con, "ml.mmm_fits", row)
        _clear(con)
        if status == "fitted":
            for table, frame in (
                ("mmm_channel_roi", result.channel_roi),
                ("mmm_region_contributions", result.region_contributions),
                ("mmm_response_curves", result.response_curves),
                ("mmm_parameters", result.parameters),
                ("mmm_fitted", result.fitted),
                ("mmm_posterior", posterior),
                ("mmm_region_mix", mix),
            ):
                _replace(con, table, frame.assign(fit_id=fid) if "fit_id" not in frame else frame)
    return fid


def write_skipped(con, reason: str, run_id: str | None, now: datetime.datetime, outcome: str = "") -> None:
    con.execute(DDL)
    row = pd.DataFrame(
        [
            {
                "fit_id": "skipped",
                "run_id": run_id,
                "fitted_at": now,
                "status": "skipped",
                "reason": reason,
                "outcome": outcome or None,
            }
        ]
    )
    with transaction(con):
        insert_frame(con, "ml.mmm_fits", row)
        _clear(con)


def latest_fit(con) -> dict | None:
    """The latest attempt (a dict of its ``ml.mmm_fits`` row), or None before the first."""
    if not table_exists(con, "ml", "mmm_fits"):
        return None
    frame = con.execute("select * from ml.mmm_fits order by fitted_at desc limit 1").df()
    return None if frame.empty else frame.iloc[0].to_dict()


# a channel whose ROI 90 % interval spans more than this (upper / lower) was not sized by the data: its curve is the
# prior's (recovery fits: at most 8×; the 200-day daily world's flat spend: 29–72×; docs/DECISIONS.md)
MAX_ROI_SPREAD = 20.0


def unsized_channels(con, channels) -> dict[str, str]:
    """The ``channels`` whose ROI 90 % interval in ``ml.mmm_channel_roi`` spans more than ``MAX_ROI_SPREAD``× (the
    data did not size them: their curve is the prior's), each with ``"ROI lower–upper (N×)"``."""
    if not table_exists(con, "ml", "mmm_channel_roi"):
        return {}
    out = {}
    for channel, lower, upper in con.execute("select channel, roi_lower, roi_upper from ml.mmm_channel_roi").fetchall():
        if channel not in channels:
            continue
        spread = upper / lower if lower > 0 else float("inf")
        if spread > MAX_ROI_SPREAD:
            out[channel] = f"ROI {lower:.2f}–{upper:.2f} ({spread:.0f}×)"
    return dict(sorted(out.items()))


def unidentified_channels(con, channels) -> list[str]:
    """``unsized_channels`` as ``"channel ROI lower–upper (N×)"`` lines."""
    return [f"{channel} {why}" for channel, why in unsized_channels(con, channels).items()]


def latest_posterior(con) -> tuple[Posterior | None, str]:
    """The curves of the latest attempt if it fitted and converged, else None and why not."""
    fit = latest_fit(con)
    if fit is None:
        return None, "no MMM fit yet (asset ml/mmm_fit)"
    if fit["status"] != "fitted":
        return None, f"the latest MMM attempt is {fit['status']}: {fit['reason']}"
    if not table_exists(con, "ml", "mmm_posterior"):
        return None, "ml.mmm_posterior is missing"
    post = con.execute("select * from ml.mmm_posterior order by draw, channel").df()
    mix = con.execute("select * from ml.mmm_region_mix order by channel, region").df()
    channels = sorted(post["channel"].unique())
    regions = sorted(mix["region"].unique())
    wide = lambda col: post.pivot(index="draw", columns="channel", values=col)[channels].to_numpy()  # noqa: E731
    region_mix = mix.pivot(index="channel", columns="region", values="share").reindex(index=channels, columns=regions)
    scale = post.groupby("channel")["scale_usd"].first()[channels].to_numpy()
    return (
        Posterior(
            channels,
            regions,
            wide("adstock_alpha"),
            wide("saturation_lam"),
            wide("beta_usd"),
            scale,
            region_mix.fillna(0.0).to_numpy(),
        ),
        f"MMM fit {fit['fit_id']} of {fit['fitted_at']:%Y-%m-%d} ({fit['weeks']} weeks to {fit['last_week']})",
    )
