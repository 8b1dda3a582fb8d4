"""Lookalike scoring as positive–unlabelled learning: who in a population looks like the seed?

The seed (e.g. paying customers in the EU) is the positive class; the population (everyone we may target)
is *unlabelled*: it holds people who would join the seed and people who would not. A classifier of seed
against a random sample of the population ranks the population by how seed-like each person is; that
ranking is the product (tiers of the top 1–10 %), not a yes/no answer.

- One scikit-learn ``Pipeline``: imputation and one-hot encoding (and scaling for the linear model) in
  front of the classifier, so the same object scores new rows.
- Negatives are a seeded random sample of the population (``negatives_per_positive``), for speed.
- Scores are calibrated (sigmoid, on a share of the training rows the classifier did not fit) and then
  corrected for the subsampling, so a score estimates P(seed | features) at the real seed-to-population
  ratio.
- Evaluation holds out part of the seed *and* part of the population that the model never saw, and
  reports how the held-out seed ranks among those population members: AUC with a bootstrap interval,
  average precision, and recall and lift at each tier. The scored evaluation rows are kept
  (``LookalikeFit.evaluation_rows``) so charts and audits can recompute every figure.

No Dagster here: the asset, the CLI (``mos lookalike score``) and the tests call these functions.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mos_pipelines.configuration.lookalike import ModelSettings
from mos_pipelines.lookalike.metrics import bootstrap_auc

TIERS: tuple[int, ...] = (1, 2, 3, 5, 10)  # percent of the population, best first


class LookalikeError(ValueError):
    """A problem with the audience's input that the user must fix (message says what)."""


class SeedTooSmallError(LookalikeError):
    """The seed has fewer members than the configured minimum."""


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns feed the model, and the columns left out with the reason."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def infer_features(frame: pd.DataFrame, exclude: Sequence[str] = (), max_category_share: float = 0.5) -> FeatureSpec:
    """Numeric columns as numbers, text/boolean/low-cardinality columns as categories; ids, constants and
    near-unique text (names, emails) left out."""
    numeric, categorical, dropped = [], [], {}
    n = max(len(frame), 1)
    for column in frame.columns:
        if column in exclude:
            continue
        values = frame[column]
        distinct = values.nunique(dropna=True)
        if distinct <= 1:
            dropped[column] = "constant or empty"
        elif pd.api.types.is_bool_dtype(values):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(values):
            numeric.append(column)
        elif pd.api.types.is_datetime64_any_dtype(values):
            dropped[column] = "timestamp (derive a numeric age or recency column instead)"
        elif distinct > max_category_share * n and distinct > 50:
            dropped[column] = f"text with {distinct} distinct values in {len(frame)} rows (looks like an identifier)"
        else:
            categorical.append(column)
    if not numeric and not categorical:
        raise LookalikeError("no usable feature columns: every column is an id, the seed flag, constant or free text")
    return FeatureSpec(tuple(numeric), tuple(categorical), dropped)


def _as_model_input(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Feature columns with one dtype per kind: floats, and strings with a marker for missing."""
    out = pd.DataFrame(index=frame.index)
    for column in spec.numeric:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in spec.categorical:
        out[column] = frame[column].astype("string").fillna("(missing)").astype(object)
    return out


def build_pipeline(spec: FeatureSpec, settings: ModelSettings) -> Pipeline:
    """Preprocessing and classifier in one Pipeline (uncalibrated)."""
    numeric_steps = [SimpleImputer(strategy="median", add_indicator=True)]
    if settings.kind == "linear":
        numeric_steps.append(StandardScaler())
    preprocess = ColumnTransformer(
        [
            ("numeric", make_pipeline(*numeric_steps), list(spec.numeric)),
            (
                "categorical",
                OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False),
                list(spec.categorical),
            ),
        ],
        sparse_threshold=0.0,
    )
    if settings.kind == "linear":
        classifier = LogisticRegression(C=1.0, max_iter=2000, random_state=settings.random_state)
    else:
        classifier = HistGradientBoostingClassifier(
            max_iter=200,
            learning_rate=0.08,
            max_leaf_nodes=31,
            l2_regularization=1.0,
            early_stopping=True,
            validation_fraction=0.15,
            n_iter_no_change=15,
            random_state=settings.random_state,
        )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


@dataclass
class Evaluation:
    """How the held-out seed ranks among population members the model never saw."""

    auc: float
    average_precision: float
    recall_at: dict[int, float]  # tier (percent) -> share of the held-out seed inside it
    lift_at: dict[int, float]  # recall / tier share
    holdout_seed: int
    eval_population: int
    auc_ci: tuple[float, float] | None = None  # 95 % stratified bootstrap interval of the AUC
    true_propensity_auc: float | None = None  # the same AUC with the true propensity as the score
    true_propensity_spearman: float | None = None  # rank correlation of score and true propensity
    true_propensity_gap_ci: tuple[float, float] | None = None  # 95 % interval of truth AUC - AUC (paired)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LookalikeFit:
    """A fitted, calibrated model with everything the model card and ``ml.model_runs`` report."""

    model: CalibratedClassifierCV
    spec: FeatureSpec
    settings: ModelSettings
    evaluation: Evaluation
    sizes: dict[str, int]
    importances: dict[str, float]
    seconds: dict[str, float]
    model_version: str
    prior_odds_factor: float  # training odds -> population odds (negative subsampling correction)
    # One row per evaluation member: ``row`` (position in the fitted frame), ``is_seed`` (held-out seed
    # member, else unseen population member), ``score``, ``weight`` (how many members of seed ∪
    # population the row stands for: reweighted, the rows have the population's seed rate, which is
    # what a calibration chart needs) and ``true_propensity`` (simulator only, else NaN).
    evaluation_rows: pd.DataFrame = field(default_factory=pd.DataFrame)

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(seed-like | features) at the population's real seed ratio."""
        p = self.model.predict_proba(_as_model_input(frame, self.spec))[:, 1]
        p = np.clip(p, 1e-9, 1 - 1e-9)
        odds = p / (1 - p) * self.prior_odds_factor
        return odds / (1 + odds)


def _rng(settings: ModelSettings, salt: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{settings.random_state}:{salt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _model_version(spec: FeatureSpec, settings: ModelSettings, frame: pd.DataFrame, is_seed: np.ndarray) -> str:
    """Same settings, features and data → same version string."""
    data = pd.util.hash_pandas_object(frame[spec.columns], index=False).to_numpy()
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"spec": [spec.numeric, spec.categorical], "settings": settings.model_dump()}, sort_keys=True
        ).encode()
    )
    h.update(data.tobytes())
    h.update(np.asarray(is_seed, dtype=bool).tobytes())
    return h.hexdigest()[:12]


def tier_recall(holdout_scores: np.ndarray, population_scores: np.ndarray) -> dict[int, float]:
    """Share of held-out seed members scoring inside each tier's cut-off of the population."""
    out = {}
    for tier in TIERS:
        cutoff = np.quantile(population_scores, 1 - tier / 100) if len(population_scores) else np.inf
        out[tier] = float(np.mean(holdout_scores >= cutoff)) if len(holdout_scores) else float("nan")
    return out


def fit_lookalike(
    frame: pd.DataFrame,
    is_seed: np.ndarray,
    spec: FeatureSpec,
    settings: ModelSettings,
    audience: str = "audience",
    true_propensity: np.ndarray | None = None,
    wider: tuple[pd.DataFrame, np.ndarray] | None = None,
) -> LookalikeFit:
    """Fit seed (``is_seed``) against the rest of ``frame`` (the population) and evaluate it.

    ``true_propensity`` (simulator only, aligned with ``frame``) adds the best achievable AUC and the rank
    correlation of the scores with the truth to the evaluation.

    ``wider`` (rows outside ``frame`` and their seed flags) adds training rows from a wider definition, for
    a small seed that borrows strength (e.g. EU payers learning from payers everywhere, region being a
    feature). Evaluation stays on the audience's own held-out seed and population, which never train.
    """
    is_seed = np.asarray(is_seed, dtype=bool)
    n_seed, n_population = int(is_seed.sum()), int((~is_seed).sum())
    if n_seed < settings.min_seed_size:
        raise SeedTooSmallError(
            f"audience {audience!r}: the seed has {n_seed} members, fewer than the minimum of "
            f"{settings.min_seed_size} (min_seed_size); widen the seed definition or lower the minimum"
        )
    if n_population < 10:
        raise LookalikeError(f"audience {audience!r}: the population to score has only {n_population} rows")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    seed_idx = np.flatnonzero(is_seed)
    pop_idx = np.flatnonzero(~is_seed)
    seed_perm = _rng(settings, "seed").permutation(seed_idx)
    n_holdout = max(1, int(round(len(seed_idx) * settings.holdout_share)))
    holdout = np.sort(seed_perm[:n_holdout])
    train_pos = np.sort(seed_perm[n_holdout : n_holdout + settings.max_train_seed])
    pop_perm = _rng(settings, "population").permutation(pop_idx)
    n_neg = int(min(settings.max_negatives, len(train_pos) * settings.negatives_per_positive, len(pop_idx) * 0.8))
    n_neg = max(n_neg, min(len(pop_idx) - 1, 10))
    train_neg = np.sort(pop_perm[:n_neg])
    eval_pop = np.sort(pop_perm[n_neg : n_neg + settings.max_eval_population])
    if len(eval_pop) == 0:
        raise LookalikeError(f"audience {audience!r}: population too small to keep an unseen evaluation sample")

    x = _as_model_input(frame, spec)
    train = np.concatenate([train_pos, train_neg])
    x_train = x.iloc[train]
    y = np.concatenate([np.ones(len(train_pos), dtype=int), np.zeros(len(train_neg), dtype=int)])
    n_wider_pos = n_wider_neg = 0
    version = _model_version(spec, settings, frame, is_seed)
    if wider is not None:
        wider_frame, wider_seed = wider[0], np.asarray(wider[1], dtype=bool)
        wider_pos = _rng(settings, "wider seed").permutation(np.flatnonzero(wider_seed))
        wider_pos = np.sort(wider_pos[: max(0, settings.max_train_seed - len(train_pos))])
        wider_pop = _rng(settings, "wider population").permutation(np.flatnonzero(~wider_seed))
        wanted = (len(train_pos) + len(wider_pos)) * settings.negatives_per_positive - len(train_neg)
        wider_neg = np.sort(
            wider_pop[: int(max(0, min(settings.max_negatives - len(train_neg), wanted, len(wider_pop))))]
        )
        n_wider_pos, n_wider_neg = len(wider_pos), len(wider_neg)
        x_train = pd.concat([x_train, _as_model_input(wider_frame, spec).iloc[np.concatenate([wider_pos, wider_neg])]])
        y = np.concatenate([y, np.ones(n_wider_pos, dtype=int), np.zeros(n_wider_neg, dtype=int)])
        version = hashlib.sha256(
            (version + _model_version(spec, settings, wider_frame, wider_seed)).encode()
        ).hexdigest()[:12]
    calibrate = _rng(settings, "calibration").random(len(y)) < settings.calibration_share
    pipeline = build_pipeline(spec, settings).fit(x_train.iloc[np.flatnonzero(~calibrate)], y[~calibrate])
    model = CalibratedClassifierCV(FrozenEstimator(pipeline), method="sigmoid")
    model.fit(x_train.iloc[np.flatnonzero(calibrate)], y[calibrate])
    timings["fit"] = time.perf_counter() - t0

    # Calibration odds are n_pos : n_neg; in the population a person is seed-like at n_seed : n_population.
    n_pos_trained, n_neg_trained = int(y.sum()), int(len(y) - y.sum())
    prior_odds_factor = (n_neg_trained / n_pos_trained) * (n_seed / n_population)
    fitted = LookalikeFit(
        model=model,
        spec=spec,
        settings=settings,
        evaluation=None,
        sizes={},  # type: ignore[arg-type]
        importances={},
        seconds=timings,
        model_version=version,
        prior_odds_factor=prior_odds_factor,
    )

    t0 = time.perf_counter()
    s_hold = fitted.score(frame.iloc[holdout])
    s_pop = fitted.score(frame.iloc[eval_pop])
    labels = np.concatenate([np.ones(len(s_hold)), np.zeros(len(s_pop))])
    scores = np.concatenate([s_hold, s_pop])
    recall = tier_recall(s_hold, s_pop)
    evaluation = Evaluation(
        auc=float(roc_auc_score(labels, scores)),
        average_precision=float(average_precision_score(labels, scores)),
        recall_at=recall,
        lift_at={tier: r / (tier / 100) for tier, r in recall.items()},
        holdout_seed=len(holdout),
        eval_population=len(eval_pop),
    )
    truth_rows = np.full(len(labels), np.nan)
    if true_propensity is not None:
        truth = np.asarray(true_propensity, dtype=float)
        truth_rows = np.concatenate([truth[holdout], truth[eval_pop]])
        evaluation.true_propensity_auc = float(roc_auc_score(labels, truth_rows))
        evaluation.true_propensity_spearman = float(pd.Series(s_pop).rank().corr(pd.Series(truth[eval_pop]).rank()))
    auc_ci, gap_ci = bootstrap_auc(
        labels, scores, None if true_propensity is None else truth_rows, seed=settings.random_state
    )
    evaluation.auc_ci = (auc_ci.low, auc_ci.high)
    if gap_ci is not None:
        evaluation.true_propensity_gap_ci = (gap_ci.low, gap_ci.high)
    fitted.evaluation_rows = pd.DataFrame(
        {
            "row": np.concatenate([holdout, eval_pop]),
            "is_seed": labels.astype(bool),
            "score": scores,
            "weight": np.concatenate(
                [np.full(len(holdout), n_seed / len(holdout)), np.full(len(eval_pop), n_population / len(eval_pop))]
            ),
            "true_propensity": truth_rows,
        }
    )
    timings["evaluate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sample = eval_pop[: min(len(eval_pop), 3000)]
    imp_rows = np.concatenate([holdout[:1000], sample])
    imp_y = np.concatenate([np.ones(min(len(holdout), 1000)), np.zeros(len(sample))])
    result = permutation_importance(
        model, x.iloc[imp_rows], imp_y, scoring="roc_auc", n_repeats=3, random_state=settings.random_state
    )
    importances = {col: float(v) for col, v in zip(x.columns, result.importances_mean)}
    timings["importance"] = time.perf_counter() - t0

    fitted.evaluation = evaluation
    fitted.importances = dict(sorted(importances.items(), key=lambda kv: -kv[1]))
    fitted.sizes = {
        "seed": n_seed,
        "population": n_population,
        "train_seed": len(train_pos),
        "train_negatives": len(train_neg),
        "holdout_seed": len(holdout),
        "eval_population": len(eval_pop),
        "wider_train_seed": n_wider_pos,
        "wider_train_negatives": n_wider_neg,
    }
    return fitted


def rank_population(ids: pd.Series, scores: np.ndarray) -> pd.DataFrame:
    """``id, score, percentile, tier``: percentile 100 is the best; tier is the smallest of ``TIERS`` whose
    top share holds the row (null beyond 10 %). Ties broken by id, so the output is deterministic."""
    frame = pd.DataFrame({"id": ids.to_numpy(), "score": scores})
    frame = frame.sort_values(["score", "id"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    n = len(frame)
    rank = np.arange(1, n + 1)  # 1 = best
    frame["percentile"] = np.round(100.0 * (n - rank + 1) / n, 4)
    share = rank / n * 100
    tier = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    for t in reversed(TIERS):
        tier[share <= t] = t
    frame["tier"] = tier
    return frame
