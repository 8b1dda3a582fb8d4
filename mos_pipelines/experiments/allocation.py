"""One daily allocation update of the variant bandit: outcomes → posteriors → new traffic shares.

``allocate`` is pure (frames in, frame out): per experiment × segment it aggregates the units'
exposures and successes (holdout units are already gone), computes the posterior of every arm
(its prior partially pooled from the experiment's other segments, see ``bandit.pooled_prior``),
P(best) from seeded draws, and the new shares under the floor, the daily change cap and the minimum
exposures rule. ``allocation_rows`` are what ``experiments.bandit_allocations`` holds.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

import numpy as np
import pandas as pd

from mos_pipelines.configuration.experiments import BanditSettings
from mos_pipelines.experiments import bandit
from mos_pipelines.experiments.outcomes import Experiment

ALLOCATION_COLUMNS = [
    "allocation_date",
    "experiment_id",
    "segment",
    "variant_id",
    "goal",
    "exposures",
    "successes",
    "value_usd",
    "prior_exposures",
    "posterior_alpha",
    "posterior_beta",
    "posterior_mean",
    "ci_lower",
    "ci_upper",
    "prob_best",
    "previous_share",
    "target_share",
    "new_share",
    "reason",
    "holdout_share",
    "days_since_previous",
    "config_fingerprint",
]


def aggregate(outcomes: pd.DataFrame, segments: pd.Series) -> pd.DataFrame:
    """Per experiment × segment × variant: exposures, successes, value (units mapped to their segment)."""
    if outcomes.empty:
        return pd.DataFrame(columns=["experiment_id", "segment", "variant_id", "exposures", "successes", "value_usd"])
    frame = outcomes.assign(segment=outcomes["unit_id"].map(segments).fillna("unknown"))
    return frame.groupby(["experiment_id", "segment", "variant_id"], as_index=False, sort=True)[
        ["exposures", "successes", "value_usd"]
    ].sum()


def allocate(
    experiments: list[Experiment],
    totals: pd.DataFrame,
    previous: pd.DataFrame,
    settings: BanditSettings,
    allocation_date: datetime.date,
    config_fingerprint: str = "",
    value_shape: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """New shares per experiment × segment × arm.

    ``totals``: ``aggregate`` output. ``previous``: the latest earlier allocation of each experiment ×
    segment (columns experiment_id, segment, variant_id, new_share, allocation_date). A segment is
    allocated when it has exposures or an earlier allocation.
    """
    rows: list[dict] = []
    for experiment in experiments:
        arms = list(experiment.variants)
        mine = totals[totals["experiment_id"] == experiment.experiment_id]
        before = previous[previous["experiment_id"] == experiment.experiment_id]
        segments = sorted(set(mine["segment"]) | set(before["segment"]))
        pooled = (
            mine.groupby("variant_id")[["exposures", "successes"]].sum().reindex(arms).fillna(0)
            if not mine.empty
            else pd.DataFrame(0.0, index=arms, columns=["exposures", "successes"])
        )
        for segment in segments:
            counts = (
                mine[mine["segment"] == segment]
                .set_index("variant_id")
                .reindex(arms)[["exposures", "successes", "value_usd"]]
                .fillna(0)
            )
            exposures = counts["exposures"].to_numpy(dtype=float)
            successes = counts["successes"].to_numpy(dtype=float)
            value = counts["value_usd"].to_numpy(dtype=float)
            seg_prev = before[before["segment"] == segment]
            prev_shares = bandit.previous_shares(arms, dict(zip(seg_prev["variant_id"], seg_prev["new_share"])))
            days = 1
            if not seg_prev.empty:
                days = max(1, (allocation_date - pd.Timestamp(seg_prev["allocation_date"].max()).date()).days)
            generator = bandit.seeded_rng(settings.random_seed, experiment.experiment_id, segment, allocation_date)
            prior_alpha, prior_beta, prior_n = bandit.pooled_prior(
                pooled["successes"].to_numpy(dtype=float) - successes,
                pooled["exposures"].to_numpy(dtype=float) - exposures,
                settings.prior_alpha,
                settings.prior_beta,
                settings.pooling_exposures,
            )
            if experiment.goal == "revenue":
                post = bandit.value_posterior(
                    successes,
                    exposures,
                    value,
                    prior_alpha,
                    prior_beta,
                    settings.draws,
                    generator,
                    (value_shape or {}).get(experiment.experiment_id),
                )
            else:
                post = bandit.bernoulli_posterior(
                    successes, exposures, prior_alpha, prior_beta, settings.draws, generator
                )
            if len(arms) == 1:
                shares, reasons = np.ones(1), [bandit.SINGLE_ARM]
            elif (exposures + prior_n).min() < settings.min_exposures:
                shares, reasons = prev_shares, [bandit.MIN_EXPOSURES] * len(arms)
            else:
                result = bandit.constrain(post.prob_best, prev_shares, settings.floor, settings.max_daily_change * days)
                shares, reasons = result.shares, result.reasons
            for i, arm in enumerate(arms):
                rows.append(
                    {
                        "allocation_date": allocation_date,
                        "experiment_id": experiment.experiment_id,
                        "segment": segment,
                        "variant_id": arm,
                        "goal": experiment.goal,
                        "exposures": int(exposures[i]),
                        "successes": float(successes[i]),
                        "value_usd": float(value[i]),
                        "prior_exposures": float(prior_n[i]),
                        "posterior_alpha": float(post.alpha[i]),
                        "posterior_beta": float(post.beta[i]),
                        "posterior_mean": float(post.mean[i]),
                        "ci_lower": float(post.lower[i]),
                        "ci_upper": float(post.upper[i]),
                        "prob_best": float(post.prob_best[i]),
                        "previous_share": float(prev_shares[i]),
                        "target_share": float(post.prob_best[i]),
                        "new_share": float(shares[i]),
                        "reason": reasons[i],
                        "holdout_share": experiment.holdout_share,
                        "days_since_previous": days,
                        "config_fingerprint": config_fingerprint,
                    }
                )
    return pd.DataFrame(rows, columns=ALLOCATION_COLUMNS)


def shares_by_segment(allocations: pd.DataFrame, experiment: Experiment) -> dict[str, list[float]]:
    """Segment -> shares of the experiment's arms (in arm order) from allocation rows."""
    out: dict[str, list[float]] = {}
    mine = allocations[allocations["experiment_id"] == experiment.experiment_id]
    for segment, rows in mine.groupby("segment"):
        shares = rows.set_index("variant_id")["new_share"].reindex(list(experiment.variants))
        if shares.isna().any():
            continue
        out[str(segment)] = shares.to_list()
    return out
