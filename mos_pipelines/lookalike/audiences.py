"""Fitting the audiences of ``config/lookalike.yaml`` (``mos_pipelines.configuration.load_lookalike``) against
the warehouse.

Plain functions over a DuckDB connection; the Dagster asset (``defs/ml``) only wires them.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mos_pipelines.configuration.lookalike import Audience, Degradation, ModelSettings
from mos_pipelines.lookalike.model import (
    TIERS,
    FeatureSpec,
    LookalikeError,
    LookalikeFit,
    fit_lookalike,
    rank_population,
)

FEATURES_TABLE = "marts.dim_customer_features"


def audience_frame(con, audience: Audience) -> tuple[pd.DataFrame, np.ndarray]:
    """Seed and population rows of ``marts.dim_customer_features`` with an ``is_seed`` flag (seed wins)."""
    return _rows(con, audience, audience.seed, audience.population)


def wider_frame(con, audience: Audience) -> tuple[pd.DataFrame, np.ndarray] | None:
    """Rows of the audience's ``learn_from`` definition that are not the audience's own (None without one)."""
    if not audience.learn_from:
        return None
    seed, population = audience.learn_from.seed, audience.learn_from.population
    own = f"coalesce(({audience.seed}), false) or coalesce(({audience.population}), false)"
    return _rows(con, audience, seed, population, exclude=own)


def _rows(
    con, audience: Audience, seed: str, population: str, exclude: str | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    columns = ", ".join(["customer_id", *audience.features])
    try:
        frame = con.execute(
            f"""select {columns}, coalesce(({seed}), false) as _is_seed
            from {FEATURES_TABLE}
            where (coalesce(({seed}), false) or coalesce(({population}), false))
                {f"and not ({exclude})" if exclude else ""}
            order by customer_id"""
        ).df()
    except Exception as exc:  # a bad predicate or feature name: say which audience
        raise LookalikeError(
            f"audience {audience.name!r}: cannot select its rows from {FEATURES_TABLE}: {exc}"
        ) from exc
    is_seed = frame.pop("_is_seed").to_numpy(dtype=bool)
    return frame, is_seed


def feature_spec(frame: pd.DataFrame, features: tuple[str, ...]) -> FeatureSpec:
    """Numeric columns as numbers; text and booleans as categories."""
    numeric = tuple(
        c for c in features if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    )
    categorical = tuple(c for c in features if c not in numeric)
    return FeatureSpec(numeric, categorical)


@dataclass
class AudienceResult:
    audience: Audience
    fit: LookalikeFit
    scores: pd.DataFrame  # customer_id, audience, score, percentile, tier, model_version, scored_at
    evaluation: pd.DataFrame  # audience, customer_id, is_seed, score, weight, true_propensity
    status: str = "accepted"  # or "degraded"
    previous: dict[str, Any] | None = None  # the last accepted run it was compared with
    reasons: list[str] = field(default_factory=list)  # why it is degraded
    within_noise: list[str] = field(default_factory=list)  # falls above the amounts but inside the holdouts' noise
    dropped: list[tuple[str, float, float]] = field(default_factory=list)  # (metric, figure, previous figure)


def fit_audience(
    con,
    audience: Audience,
    settings: ModelSettings,
    scored_at: datetime.datetime,
    true_propensity: pd.Series | None = None,
) -> AudienceResult:
    frame, is_seed = audience_frame(con, audience)
    spec = feature_spec(frame, audience.features)
    truth = None
    if true_propensity is not None:
        truth = frame["customer_id"].map(true_propensity).astype(float)
        truth = truth.fillna(truth.mean()).to_numpy()
    fit = fit_lookalike(
        frame, is_seed, spec, settings, audience=audience.name, true_propensity=truth, wider=wider_frame(con, audience)
    )
    population = frame.loc[~is_seed]
    ranked = rank_population(population["customer_id"], fit.score(population)).rename(columns={"id": "customer_id"})
    ranked.insert(1, "audience", audience.name)
    ranked["model_version"] = fit.model_version
    ranked["scored_at"] = scored_at
    rows = fit.evaluation_rows
    evaluation = pd.DataFrame(
        {"audience": audience.name, "customer_id": frame["customer_id"].to_numpy()[rows["row"].to_numpy()]}
    )
    evaluation = pd.concat([evaluation, rows.drop(columns="row").reset_index(drop=True)], axis=1)
    return AudienceResult(audience=audience, fit=fit, scores=ranked, evaluation=evaluation)


Z_95 = 1.959964  # the half-width of a 95 % interval in standard errors (fit_lookalike's bootstrap_auc level)


def _figure(value: Any) -> float | None:
    """A stored figure as a float; None when missing or not a number (NULL, NaN, pd.NA)."""
    if value is None or pd.isna(value):
        return None
    return float(value)


def _recall_se(recall: float, holdout: int) -> float:
    """The binomial standard error of a recall measured on ``holdout`` seeds (the share kept off 0 and 1: a
    holdout of 20 all inside the tier does not prove a recall of exactly 1)."""
    n = max(int(holdout), 1)
    p = min(max(recall, 0.5 / n), 1 - 0.5 / n)
    return float(np.sqrt(p * (1 - p) / n))


def _auc_se(low: Any, high: Any) -> float | None:
    """The standard error of an AUC from its 95 % bootstrap interval (None without one)."""
    low, high = _figure(low), _figure(high)
    if low is None or high is None:
        return None
    return (high - low) / (2 * Z_95)


def _noise(first: float | None, second: float | None) -> float:
    """The standard error of the difference of two independent figures; one missing is taken as the other's."""
    a = first if first is not None else second
    b = second if second is not None else first
    return float(np.hypot(a or 0.0, b or 0.0))


def judge(result: AudienceResult, previous: dict[str, Any] | None, degradation: Degradation) -> None:
    """Mark the result degraded when it fell too far below the last accepted run: by more than the allowed amount
    and beyond the noise of the two holdouts (``degradation.noise_z`` standard errors of the difference). A drop
    above the amount but within the noise leaves the run accepted and is said in ``within_noise``. A figure missing
    on either side (NULL, NaN) is not judged."""
    result.previous = previous
    if not previous:
        return
    ev = result.fit.evaluation
    stored_holdout = _figure(previous.get("holdout_seed"))
    before_holdout = int(stored_holdout) if stored_holdout and stored_holdout > 0 else ev.holdout_seed
    before_recall, before_auc = _figure(previous.get("recall_at_10")), _figure(previous.get("auc"))
    now_recall, now_auc = _figure(ev.recall_at.get(10)), _figure(ev.auc)
    recall_noise = (
        _noise(_recall_se(before_recall, before_holdout), _recall_se(now_recall, ev.holdout_seed))
        if before_recall is not None and now_recall is not None
        else 0.0
    )
    auc_noise = _noise(
        _auc_se(previous.get("auc_ci_low"), previous.get("auc_ci_high")), _auc_se(*(ev.auc_ci or (None, None)))
    )
    checks = (
        (
            "recall_at_10",
            "recall in the top 10 %",
            before_recall,
            now_recall,
            degradation.max_recall_at_10_drop,
            recall_noise,
        ),
        ("auc", "AUC", before_auc, now_auc, degradation.max_auc_drop, auc_noise),
    )
    for metric, label, before, now, allowed, noise in checks:
        if before is None or now is None or not before - now > allowed:
            continue
        margin = degradation.noise_z * noise
        if before - now > margin:
            result.dropped.append((metric, now, before))
            beyond = f" and beyond the noise of the holdouts, ±{margin:.3f}" if margin else ""
            result.reasons.append(
                f"{label} fell from {before:.3f} to {now:.3f} (more than the allowed {allowed:.2f}{beyond})"
            )
        else:
            result.within_noise.append(
                f"{label} fell from {before:.3f} to {now:.3f}, more than {allowed:.2f} but within the noise of holdouts "
                f"of {before_holdout} and {ev.holdout_seed} seeds (±{margin:.3f}): not degraded"
            )
    if result.reasons:
        result.status = "degraded"


def model_run_row(result: AudienceResult, run_id: str, fitted_at: datetime.datetime) -> dict[str, Any]:
    ev, fit = result.fit.evaluation, result.fit
    return {
        "model_run_id": f"{result.audience.name}:{run_id}",
        "audience": result.audience.name,
        "run_id": run_id,
        "model_version": fit.model_version,
        "model_kind": fit.settings.kind,
        "definition_hash": result.audience.definition_hash(fit.settings),
        "status": result.status,
        "status_reason": "; ".join(result.reasons or result.within_noise) or None,
        "seed_size": fit.sizes["seed"],
        "population_size": fit.sizes["population"],
        "train_seed": fit.sizes["train_seed"],
        "train_negatives": fit.sizes["train_negatives"],
        "wider_train_seed": fit.sizes["wider_train_seed"],
        "wider_train_negatives": fit.sizes["wider_train_negatives"],
        "holdout_seed": fit.sizes["holdout_seed"],
        "eval_population": fit.sizes["eval_population"],
        "auc": ev.auc,
        "auc_ci_low": ev.auc_ci[0] if ev.auc_ci else None,
        "auc_ci_high": ev.auc_ci[1] if ev.auc_ci else None,
        "average_precision": ev.average_precision,
        "recall_at_10": ev.recall_at[10],
        "lift_at_10": ev.lift_at[10],
        "recall_at_tiers": json.dumps({str(t): ev.recall_at[t] for t in TIERS}),
        "lift_at_tiers": json.dumps({str(t): ev.lift_at[t] for t in TIERS}),
        "true_propensity_auc": ev.true_propensity_auc,
        "true_propensity_spearman": ev.true_propensity_spearman,
        "true_propensity_gap_ci_low": ev.true_propensity_gap_ci[0] if ev.true_propensity_gap_ci else None,
        "true_propensity_gap_ci_high": ev.true_propensity_gap_ci[1] if ev.true_propensity_gap_ci else None,
        "feature_importances": json.dumps(fit.importances),
        "seconds": json.dumps({k: round(v, 3) for k, v in fit.seconds.items()}),
        "compared_with_run": (result.previous or {}).get("model_run_id"),
        "fitted_at": fitted_at,
    }


def skipped_run_row(
    audience: Audience, settings: ModelSettings, reason: str, run_id: str, fitted_at: datetime.datetime
) -> dict[str, Any]:
    """The ``ml.model_runs`` row of an audience that could not be fitted in this run."""
    return {
        "model_run_id": f"{audience.name}:{run_id}",
        "audience": audience.name,
        "run_id": run_id,
        "model_version": "none",
        "model_kind": settings.kind,
        "definition_hash": audience.definition_hash(settings),
        "status": "skipped",
        "status_reason": reason,
        "fitted_at": fitted_at,
    }


def model_card(result: AudienceResult) -> str:
    """Markdown: purpose, data, metrics, limits."""
    a, fit, ev = result.audience, result.fit, result.fit.evaluation
    tiers = "\n".join(f"| top {t} % | {ev.recall_at[t]:.3f} | {ev.lift_at[t]:.2f}× |" for t in TIERS)
    top = "\n".join(f"- `{k}`: {v:.4f}" for k, v in list(fit.importances.items())[:8])
    truth = ""
    if ev.true_propensity_auc is not None:
        gap = ""
        if ev.true_propensity_gap_ci:
            gap = (
                f" (gap {ev.true_propensity_auc - ev.auc:.3f}, 95 % interval [{ev.true_propensity_gap_ci[0]:.3f}, "
                f"{ev.true_propensity_gap_ci[1]:.3f}])"
            )
        truth = (
            f"\nOn the simulator, the true propensity itself ranks the same held-out seed at AUC "
            f"{ev.true_propensity_auc:.3f}{gap}; it includes latent engagement no warehouse feature sees "
            f"for anonymous visitors, so it is a ceiling, not a target. Rank correlation of the scores "
            f"with the true propensity: {ev.true_propensity_spearman:.3f}.\n"
        )
    ci = f" (95 % bootstrap interval [{ev.auc_ci[0]:.3f}, {ev.auc_ci[1]:.3f}])" if ev.auc_ci else ""
    wider = ""
    if a.learn_from:
        wider = (
            f"\nAlso learned from the wider seed `{a.learn_from.seed}` ({fit.sizes['wider_train_seed']} members) "
            f"against `{a.learn_from.population}` ({fit.sizes['wider_train_negatives']} sampled), outside this "
            f"audience; evaluation uses only the audience's own people."
        )
    status = f"**{result.status}**" + (f": {'; '.join(result.reasons)}" if result.reasons else "")
    return f"""# Lookalike model card: {a.name}

**Purpose.** {a.description or "Rank the population by similarity to the seed."} Scores rank people for ad and
email audiences (tiers of the top 1, 2, 3, 5 and 10 %); they are not a prediction that anyone will buy.

**Data.** Seed: `{a.seed}` ({fit.sizes["seed"]} customers, {fit.sizes["holdout_seed"]} held out).
Population: `{a.population}` ({fit.sizes["population"]} customers; {fit.sizes["train_negatives"]} sampled as
training negatives). Features from `marts.dim_customer_features`: {", ".join(f"`{c}`" for c in a.features)}.{wider}

**Model.** {fit.settings.kind.replace("_", " ")} in one scikit-learn Pipeline, positive–unlabelled (seed vs
population sample), sigmoid-calibrated and corrected to the population's seed rate; version `{fit.model_version}`;
status {status}.

**Evaluation** (held-out seed ranked among {ev.eval_population} population members the model never saw):
AUC {ev.auc:.3f}{ci}, average precision {ev.average_precision:.3f}.

| tier | recall | lift |
|---|---|---|
{tiers}
{truth}
**Most important features** (AUC lost when the feature is shuffled):
{top}

**Limits.** The population is unlabelled: some of it would join the seed, so the AUC understates the ranking
quality. A seed that reflects past targeting teaches the model that targeting. Scores are relative to this
population and this fit: compare tiers, not raw scores, across runs. Seed members are never scored.
"""
