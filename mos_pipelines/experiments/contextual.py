"""A contextual bandit: P(response | arm, unit features) learned online, arms chosen by Thompson sampling.

- Features: every categorical column is one-hot encoded over the levels seen at fit time with at least
  ``min_level_rows`` rows (at most ``max_levels`` per column, the most frequent first); a missing value is a
  level of its own (``(missing)``: real data are sparse and "unknown" often behaves differently). A rare or
  unseen level encodes as all zeros, i.e. falls back to the base (the intercept). Numeric columns are
  standardised (mean, sd of the fit data) and clipped to ±5 sd (heavy tails do not dominate); a missing number
  is the mean plus a missing indicator. Nothing depends on which columns a dataset happens to have.
- Model, per arm: Bayesian logistic regression with a Gaussian posterior N(m, P⁻¹) (the Laplace
  approximation). ``update`` folds a batch in sequentially: the previous posterior is the prior, the MAP is
  found by Newton steps and the precision grows by Xᵀ W X (Chapelle & Li 2011, "An empirical evaluation of
  Thompson sampling"). Prior: intercept N(logit(α/(α+β)), ``intercept_sd``²) from the bandit's Beta prior,
  coefficients N(0, ``prior_sd``² = 0.5²): a segment whose odds differ from the arm's base by more than ×2.7 is
  a priori unlikely, and a level seen a few times moves its arm little. Each coefficient's uncertainty is
  exploration, so every context column costs reward until it is learned (docs/DECISIONS.md, Experiments).
- Beside it, per arm, the same model without features (intercept only: the non-contextual bandit's view).
  The two are averaged by their posterior probability (Bayesian model averaging), from their evidence (marginal
  likelihood, by the same Laplace approximation, accumulated batch by batch). Features that do not explain the
  rewards better than no features (a log without heterogeneity) pay for their extra parameters (the Occam
  factor) and lose weight, so the policy falls back to the non-contextual bandit instead of exploring noise.
- Response probabilities (``probabilities``): the model-averaged posterior mean of σ(xᵀw), each model's by the
  probit approximation σ(μ / √(1 + π s² / 8)), μ = xᵀm, s² = xᵀ P⁻¹ x.
- Choice (``shares`` / ``choose``): per unit, the probability that each arm is the best (randomised
  probability matching = Thompson sampling in batch form; the arms' logits are normal per unit, so it is computed
  by quadrature, without sampling noise), then the same
  guard rails as the non-contextual bandit (``BanditSettings``): every arm keeps at least ``floor`` for every
  unit (Euclidean projection, as ``bandit.constrain``); no unit's share of an arm moves by more than
  ``max_daily_change`` × days in one update (over the units of the update's population: the new shares are the
  mix λ · new Thompson shares + (1 − λ) · previous shares with the largest λ that keeps every unit within the
  cap, so the policy is a weighted mix of the last few posteriors' shares until the cap stops binding; mixes
  below 0.1 % weight are dropped); nothing moves before every arm has ``min_exposures`` rows learned from. The
  holdout arm is never chosen
  and its rows are never learned from (``holdout_arm``).
- Deterministic: shares are computed, not sampled; ``choose`` draws from them with the caller's generator
  (``bandit.seeded_rng``) and returns each choice's probability (log it for IPS); ``to_dict`` / ``from_dict`` round-trip
  the policy exactly through JSON, so a stored decision can be re-scored.

Plain module: no Dagster, no simulator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from scipy import special

from mos_pipelines.configuration.experiments import BanditSettings

MISSING = "(missing)"
MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null", "none"})  # read as a missing value
CLIP_SD = 5.0
QUADRATURE_NODES = 48
_nodes, _weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)  # ∫ f(z) e^{-z²/2} dz
_HERMITE = (_nodes, _weights / _weights.sum())  # E[f(Z)], Z ~ N(0, 1)
Features: TypeAlias = pd.DataFrame | np.ndarray  # raw feature columns, or a design matrix from the policy's encoder
FORMAT_VERSION = 1
THOMPSON = "thompson"
CAPPED = "capped"
MIN_EXPOSURES = "min_exposures"
MIN_COMPONENT_WEIGHT = 1e-3  # a previous posterior whose weight in the served shares fell below this is dropped


class ContextError(ValueError):
    """Features or rewards the policy cannot use; the message names the column or row."""


def is_missing(values: pd.Series) -> np.ndarray:
    """Missing: NaN/None, or text that is empty or says NA / N/A / NaN / null / none."""
    missing = values.isna().to_numpy()
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.astype("string").str.strip().str.lower()
        missing = missing | text.isin(MISSING_TEXT).fillna(True).to_numpy(dtype=bool)
    return missing


def numeric_values(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(numbers, parsed) of a column: NaN where missing or not a number; ``parsed`` marks finite numbers."""
    if pd.api.types.is_bool_dtype(values.dtype):
        numbers = values.astype(float).to_numpy()
    elif pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=float)
    else:
        numbers = pd.to_numeric(values.astype("string").str.strip(), errors="coerce").to_numpy(dtype=float)
    parsed = np.isfinite(numbers)
    return np.where(parsed, numbers, np.nan), parsed


def looks_numeric(values: pd.Series) -> bool:
    """A column is numeric when at least 90 % of its present values are finite numbers (and it is not boolean)."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return False
    present = ~is_missing(values)
    if not present.any():
        return False
    _, parsed = numeric_values(values[present])
    return bool(parsed.mean() >= 0.9)


@dataclass(frozen=True)
class FeatureEncoder:
    """Column -> design-matrix columns; fit once from features (never from rewards)."""

    categorical: dict[str, list[str]]  # column -> levels with their own one-hot column
    numeric: dict[str, tuple[float, float]]  # column -> (mean, sd)
    numeric_missing: list[str]  # numeric columns with a missing indicator

    @classmethod
    def fit(
        cls,
        features: pd.DataFrame,
        categorical: Sequence[str] | None = None,
        max_levels: int = 50,
        min_level_rows: int = 5,
    ) -> FeatureEncoder:
        cats: dict[str, list[str]] = {}
        nums: dict[str, tuple[float, float]] = {}
        flagged: list[str] = []
        forced = set(categorical or ())
        for column in features.columns:
            values = features[column]
            name = str(column)
            if name not in forced and looks_numeric(values):
                numbers, parsed = numeric_values(values)
                mean = float(numbers[parsed].mean())
                sd = float(numbers[parsed].std()) if parsed.sum() > 1 else 0.0
                nums[name] = (mean, sd if sd > 0 else 1.0)
                if (~parsed).any():
                    flagged.append(name)
            else:
                counts = _levels(values).value_counts()
                counts = counts[counts >= min_level_rows]
                ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_levels]
                cats[name] = sorted(level for level, _ in ordered)
        return cls(cats, nums, flagged)

    @property
    def names(self) -> list[str]:
        """Design-matrix column names, intercept first."""
        out = ["(intercept)"]
        for column, levels in self.categorical.items():
            out += [f"{column}={level}" for level in levels]
        for column in self.numeric:
            out.append(column)
            if column in self.numeric_missing:
                out.append(f"{column}={MISSING}")
        return out

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        """The design matrix (n × d); a column the encoder knows but ``features`` lacks raises ContextError."""
        absent = [c for c in [*self.categorical, *self.numeric] if c not in features.columns]
        if absent:
            raise ContextError(
                f"feature column(s) {', '.join(map(repr, absent))} are missing (the policy was fit on "
                f"{', '.join([*self.categorical, *self.numeric])})"
            )
        n = len(features)
        parts = [np.ones((n, 1))]
        for column, levels in self.categorical.items():
            values = _levels(features[column]).to_numpy()
            parts.append((values[:, None] == np.asarray(levels, dtype=object)[None, :]).astype(float))
        for column, (mean, sd) in self.numeric.items():
            numbers, parsed = numeric_values(features[column])
            z = np.clip(np.where(parsed, (numbers - mean) / sd, 0.0), -CLIP_SD, CLIP_SD)
            parts.append(z[:, None])
            if column in self.numeric_missing:
                parts.append((~parsed).astype(float)[:, None])
        return np.hstack(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "categorical": self.categorical,
            "numeric": {c: list(v) for c, v in self.numeric.items()},
            "numeric_missing": self.numeric_missing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureEncoder:
        return cls(
            {c: list(v) for c, v in data["categorical"].items()},
            {c: (float(v[0]), float(v[1])) for c, v in data["numeric"].items()},
            list(data["numeric_missing"]),
        )


def _levels(values: pd.Series) -> pd.Series:
    """Categorical values as trimmed text, missing ones as ``MISSING``."""
    text = values.astype("string").str.strip()
    return pd.Series(np.where(is_missing(values), MISSING, text.fillna(MISSING)), index=values.index, dtype=object)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _predictive(post: ArmPosterior, x: np.ndarray) -> np.ndarray:
    """Posterior predictive P(y = 1 | x): σ(μ / √(1 + π s² / 8)) (the probit approximation)."""
    mean = x @ post.mean
    variance = np.maximum(((x @ post.covariance()) * x).sum(axis=1), 0.0)
    return _sigmoid(mean / np.sqrt(1.0 + math.pi * variance / 8.0))


def floor_projection(targets: np.ndarray, floor: float) -> np.ndarray:
    """Per row, the closest shares (Euclidean) to ``targets`` with every share ≥ floor and the row summing to 1."""
    k = targets.shape[1]
    floor = min(floor, 1.0 / k)
    if floor <= 0:
        return targets / targets.sum(axis=1, keepdims=True)
    low = (floor - targets).min(axis=1) - 1.0
    high = (floor - targets).max(axis=1) + 1.0
    for _ in range(60):  # bisection on the shift λ per row: Σ max(target + λ, floor) = 1
        mid = (low + high) / 2
        over = np.maximum(targets + mid[:, None], floor).sum(axis=1) > 1
        high = np.where(over, mid, high)
        low = np.where(over, low, mid)
    shares = np.maximum(targets + ((low + high) / 2)[:, None], floor)
    return shares / shares.sum(axis=1, keepdims=True)


@dataclass
class ArmPosterior:
    """Gaussian posterior N(mean, precision⁻¹) of one arm's logistic weights."""

    mean: np.ndarray
    precision: np.ndarray
    rows: int = 0
    successes: float = 0.0

    _covariance: np.ndarray | None = field(default=None, repr=False, compare=False)

    def covariance(self) -> np.ndarray:
        if self._covariance is None:
            self._covariance = np.linalg.inv(self.precision)
        return self._covariance

    def copy(self) -> ArmPosterior:
        return ArmPosterior(self.mean.copy(), self.precision.copy(), self.rows, self.successes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "precision": self.precision.tolist(),
            "rows": self.rows,
            "successes": self.successes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArmPosterior:
        return cls(
            np.asarray(data["mean"], dtype=float),
            np.asarray(data["precision"], dtype=float),
            int(data["rows"]),
            float(data["successes"]),
        )


@dataclass(frozen=True)
class Models:
    """A snapshot of both models at an update: the contextual one, the base one, and P(contextual)."""

    context: list[ArmPosterior]
    base: list[ArmPosterior]
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "context": [p.to_dict() for p in self.context],
            "base": [p.to_dict() for p in self.base],
            "weight": self.weight,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Models:
        return cls(
            [ArmPosterior.from_dict(p) for p in data["context"]],
            [ArmPosterior.from_dict(p) for p in data["base"]],
            float(data["weight"]),
        )


@dataclass(frozen=True)
class Component:
    """One part of the served shares: fixed shares (the start), or a snapshot of the models at an update."""

    weight: float
    shares: np.ndarray | None
    models: Models | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight": self.weight,
            "shares": None if self.shares is None else np.asarray(self.shares).tolist(),
            "models": None if self.models is None else self.models.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Component:
        return cls(
            float(data["weight"]),
            None if data["shares"] is None else np.asarray(data["shares"], dtype=float),
            None if data["models"] is None else Models.from_dict(data["models"]),
        )


@dataclass
class ContextualPolicy:
    """Contextual Thompson sampling with the bandit's guard rails; build with ``create`` or ``fit``."""

    arms: list[str]
    encoder: FeatureEncoder
    settings: BanditSettings
    posteriors: list[ArmPosterior]  # the contextual model, per arm
    base: list[ArmPosterior]  # the intercept-only model, per arm (the non-contextual bandit's view)
    holdout_arm: str | None = None
    components: list[Component] = field(default_factory=list)  # the served shares: a weighted mix
    log_evidence: tuple[float, float] = (0.0, 0.0)  # log marginal likelihood of (base, contextual), Laplace
    reason: str = MIN_EXPOSURES
    updates: int = 0
    prior_sd: float = 0.5
    intercept_sd: float = 5.0

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        arms: Sequence[str],
        encoder: FeatureEncoder,
        settings: BanditSettings,
        holdout_arm: str | None = None,
        prior_sd: float = 0.5,
        intercept_sd: float = 5.0,
    ) -> ContextualPolicy:
        arms = [str(a) for a in arms if a != holdout_arm]
        if len(arms) < 2 or len(set(arms)) != len(arms):
            raise ContextError(f"a policy needs at least two distinct arms besides the holdout, got {arms}")
        d = len(encoder.names)
        prior_rate = settings.prior_alpha / (settings.prior_alpha + settings.prior_beta)
        mean = np.zeros(d)
        mean[0] = math.log(prior_rate / (1 - prior_rate))
        scale = np.full(d, 1.0 / prior_sd**2)
        scale[0] = 1.0 / intercept_sd**2
        posteriors = [ArmPosterior(mean.copy(), np.diag(scale)) for _ in arms]
        base = [ArmPosterior(mean[:1].copy(), np.diag(scale[:1])) for _ in arms]
        k = len(arms)
        return cls(
            arms=arms,
            encoder=encoder,
            settings=settings,
            posteriors=posteriors,
            base=base,
            holdout_arm=holdout_arm,
            components=[Component(1.0, np.full(k, 1.0 / k), None)],
            prior_sd=prior_sd,
            intercept_sd=intercept_sd,
        )

    @classmethod
    def fit(
        cls,
        features: pd.DataFrame,
        arms: Sequence[str] | pd.Series,
        rewards: Sequence[float] | pd.Series,
        settings: BanditSettings,
        holdout_arm: str | None = None,
        categorical: Sequence[str] | None = None,
        all_arms: Sequence[str] | None = None,
    ) -> ContextualPolicy:
        """Encoder and posteriors from a log of (features, arm shown, 0/1 reward), learned as one batch."""
        arm_values = pd.Series(np.asarray(arms, dtype=object)).astype(str)
        names = sorted(set(all_arms) if all_arms is not None else set(arm_values))
        policy = cls.create(names, FeatureEncoder.fit(features, categorical), settings, holdout_arm)
        policy.update(features, arm_values, rewards)
        return policy

    # -- learning ----------------------------------------------------------------------------

    def update(
        self,
        features: Features,
        arms: Sequence[str] | pd.Series | np.ndarray,
        rewards: Sequence[float] | pd.Series | np.ndarray,
        population: Features | None = None,
        days: float = 1.0,
        previous_shares: np.ndarray | None = None,
    ) -> None:
        """Learn from one batch (0/1 rewards) and move the shares under the guard rails.

        Rows of the holdout arm are skipped (never learned from); an arm the policy does not know raises.
        ``population``: the units whose average share the change cap applies to (default: ``features``);
        ``previous_shares``: their shares (units × arms) before this update, when the caller has them already.
        """
        x = self._design(features.reset_index(drop=True) if isinstance(features, pd.DataFrame) else features)
        arm_values = np.asarray(pd.Series(np.asarray(arms, dtype=object)).astype(str), dtype=object)
        y = np.asarray(rewards, dtype=float)
        if not (len(x) == len(arm_values) == len(y)):
            raise ContextError(f"features, arms and rewards differ in length ({len(x)}, {len(arm_values)}, {len(y)})")
        bad = np.flatnonzero(~np.isin(y, (0.0, 1.0)))
        if len(bad):
            raise ContextError(
                f"row {bad[0] + 1}: reward {float(y[bad[0]])!r}; the contextual policy learns 0/1 rewards"
            )
        known = set(self.arms) | ({self.holdout_arm} if self.holdout_arm is not None else set())
        unknown = sorted(set(arm_values.tolist()) - known)
        if unknown:
            raise ContextError(f"arm(s) {', '.join(map(repr, unknown))} are not arms of the policy ({self.arms})")
        units = population if population is not None else features
        if previous_shares is None:
            previous_shares = self.shares_matrix(units)
        evidence = np.array(self.log_evidence, dtype=float)
        for i, arm in enumerate(self.arms):
            rows = arm_values == arm
            if rows.any():
                evidence[0] += self._learn(self.base[i], x[rows, :1], y[rows])
                evidence[1] += self._learn(self.posteriors[i], x[rows], y[rows])
        self.log_evidence = (float(evidence[0]), float(evidence[1]))
        self.updates += 1
        self._move(units, np.asarray(previous_shares, dtype=float), days)

    @staticmethod
    def _learn(post: ArmPosterior, x: np.ndarray, y: np.ndarray) -> float:
        """Sequential Laplace step: MAP of batch likelihood × current Gaussian, precision += Xᵀ W X.

        Returns the batch's log marginal likelihood given the current posterior, by the same Laplace
        approximation: log p(y | X, past) ≈ log-likelihood(ŵ) − ½ (ŵ − m)ᵀ P (ŵ − m) − ½ log|H| + ½ log|P|.
        Summed over batches it is the model's evidence, whatever the batch sizes.
        """
        prior_mean, prior_precision = post.mean, post.precision
        w = prior_mean.copy()

        def objective(v: np.ndarray) -> float:
            z = x @ v
            loglik = float(np.sum(y * z - np.logaddexp(0.0, z)))
            delta = v - prior_mean
            return loglik - 0.5 * float(delta @ prior_precision @ delta)

        current = objective(w)
        for _ in range(50):
            p = _sigmoid(x @ w)
            gradient = x.T @ (y - p) - prior_precision @ (w - prior_mean)
            hessian = (x * (p * (1 - p))[:, None]).T @ x + prior_precision
            step = np.linalg.solve(hessian, gradient)
            t = 1.0
            while t > 1e-4:  # damped Newton: never accept a step that lowers the posterior
                candidate = objective(w + t * step)
                if candidate >= current - 1e-12:
                    break
                t /= 2
            w = w + t * step
            improvement = candidate - current
            current = candidate
            if improvement < 1e-9 or float(np.abs(t * step).max()) < 1e-8:
                break
        p = _sigmoid(x @ w)
        precision = (x * (p * (1 - p))[:, None]).T @ x + prior_precision
        evidence = current - 0.5 * np.linalg.slogdet(precision)[1] + 0.5 * np.linalg.slogdet(prior_precision)[1]
        post.mean = w
        post._covariance = None
        post.precision = precision
        post.rows += len(y)
        post.successes += float(y.sum())
        return float(evidence)

    @property
    def context_weight(self) -> float:
        """P(the contextual model | data) against the intercept-only one, from their evidence (equal prior odds):
        the features are used as far as they explain the rewards better than no features, net of their cost."""
        base, context = self.log_evidence
        return float(_sigmoid(np.array(context - base)))

    def _snapshot(self) -> Models:
        return Models([p.copy() for p in self.posteriors], [p.copy() for p in self.base], self.context_weight)

    def _move(self, population: Features, previous: np.ndarray, days: float) -> None:
        """Mix in the new posterior's shares with the largest weight that keeps every unit within the cap."""
        if min(p.rows for p in self.posteriors) < self.settings.min_exposures:
            self.reason = MIN_EXPOSURES
            return
        snapshot = self._snapshot()
        target = self._floored(snapshot, self._design(population))
        gap = float(np.abs(target - previous).max()) if len(target) else 0.0
        cap = self.settings.max_daily_change * days
        weight = 1.0 if gap <= cap else cap / gap
        newest = Component(weight, None, snapshot)
        kept = [Component(c.weight * (1 - weight), c.shares, c.models) for c in self.components]
        kept = [c for c in kept if c.weight >= MIN_COMPONENT_WEIGHT]
        total = sum(c.weight for c in kept) + weight
        self.components = [Component(c.weight / total, c.shares, c.models) for c in [*kept, newest]]
        self.reason = THOMPSON if weight >= 1.0 else CAPPED

    # -- prediction --------------------------------------------------------------------------

    def _design(self, features: Features) -> np.ndarray:
        if isinstance(features, np.ndarray):
            if features.ndim != 2 or features.shape[1] != len(self.encoder.names):
                raise ContextError(f"a design matrix needs {len(self.encoder.names)} columns, got {features.shape}")
            return features
        return self.encoder.transform(features)

    def encode(self, features: pd.DataFrame) -> np.ndarray:
        """The design matrix of ``features`` (pass it instead of the frame to score the same units repeatedly)."""
        return self.encoder.transform(features)

    @staticmethod
    def _scores(posteriors: list[ArmPosterior], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per unit × arm: posterior mean and sd of the logit."""
        mean = np.column_stack([x @ p.mean for p in posteriors])
        variance = np.column_stack([((x @ p.covariance()) * x).sum(axis=1) for p in posteriors])
        return mean, np.sqrt(np.maximum(variance, 0.0))

    def probabilities(self, features: pd.DataFrame) -> pd.DataFrame:
        """Posterior mean P(response | arm, features): one column per arm, one row per unit."""
        x = self._design(features)
        w = self.context_weight
        context = np.column_stack([_predictive(post, x) for post in self.posteriors])
        base = np.column_stack([_predictive(post, x[:, :1]) for post in self.base])
        return pd.DataFrame(w * context + (1 - w) * base, index=features.index, columns=self.arms)

    def prob_best(self, features: Features) -> np.ndarray:
        """Per unit, each arm's probability of the highest response under the current posteriors (both models,
        weighted by P(contextual))."""
        return self._prob_best_models(self._snapshot(), self._design(features))

    @classmethod
    def _prob_best_models(cls, models: Models, x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), len(models.context)))
        if models.weight > 0:
            out += models.weight * cls._prob_best(models.context, x)
        if models.weight < 1:
            out += (1 - models.weight) * cls._prob_best(models.base, x[:, :1])
        return out

    @classmethod
    def _prob_best(cls, posteriors: list[ArmPosterior], x: np.ndarray) -> np.ndarray:
        """Per unit, each arm's posterior probability of the highest response.

        The arms' logits are independent normals per unit, so P(arm i is best) = E_z[Π_{j≠i} Φ((μ_i + s_i z − μ_j)
        / s_j)], computed by Gauss–Hermite quadrature (exact up to quadrature error, no sampling noise).
        """
        mean, sd = cls._scores(posteriors, x)
        sd = np.maximum(sd, 1e-9)
        nodes, weights = _HERMITE
        value = mean[:, :, None] + sd[:, :, None] * nodes[None, None, :]  # n × k × q: arm i's logit at node q
        n, k = mean.shape
        out = np.empty((n, k))
        for i in range(k):
            log_p = np.zeros((n, len(nodes)))
            for j in range(k):
                if j != i:
                    log_p += special.log_ndtr((value[:, i, :] - mean[:, j, None]) / sd[:, j, None])
            out[:, i] = np.exp(log_p) @ weights
        return out / out.sum(axis=1, keepdims=True)

    def _floored(self, models: Models, x: np.ndarray) -> np.ndarray:
        return floor_projection(self._prob_best_models(models, x), self.settings.floor)

    def population_shares(self, features: Features) -> np.ndarray:
        """Average share of each arm over ``features`` under the current policy."""
        return self.shares_matrix(features).mean(axis=0)

    def shares_matrix(self, features: Features) -> np.ndarray:
        """Per unit × arm: the probability of choosing the arm (floors, change cap and min exposures applied)."""
        x = self._design(features)
        out = np.zeros((len(x), len(self.arms)))
        for c in self.components:
            if c.models is None:
                out += c.weight * np.asarray(c.shares, dtype=float)[None, :]
            else:
                out += c.weight * self._floored(c.models, x)
        return out

    def shares(self, features: pd.DataFrame) -> pd.DataFrame:
        """``shares_matrix`` as a frame: one column per arm."""
        return pd.DataFrame(self.shares_matrix(features), index=features.index, columns=self.arms)

    def choose(self, features: pd.DataFrame, generator: np.random.Generator) -> pd.DataFrame:
        """One arm per unit drawn from its shares, with the probability it had (log it: it makes IPS possible)."""
        shares = self.shares_matrix(features)
        cumulative = np.cumsum(shares, axis=1)
        cumulative[:, -1] = 1.0
        pick = (generator.random(len(features))[:, None] >= cumulative).sum(axis=1)
        pick = np.minimum(pick, len(self.arms) - 1)
        return pd.DataFrame(
            {
                "arm": np.asarray(self.arms, dtype=object)[pick],
                "propensity": shares[np.arange(len(features)), pick],
            },
            index=features.index,
        )

    def coefficients(self) -> pd.DataFrame:
        """Posterior mean log-odds weights: one row per design column, one column per arm (for explanations)."""
        return pd.DataFrame(
            np.column_stack([p.mean for p in self.posteriors]), index=self.encoder.names, columns=self.arms
        )

    # -- storage -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to re-score a decision; JSON-serialisable, round-trips exactly."""
        return {
            "format": FORMAT_VERSION,
            "arms": self.arms,
            "holdout_arm": self.holdout_arm,
            "settings": self.settings.model_dump(mode="json"),
            "encoder": self.encoder.to_dict(),
            "posteriors": [p.to_dict() for p in self.posteriors],
            "base": [p.to_dict() for p in self.base],
            "log_evidence": list(self.log_evidence),
            "components": [c.to_dict() for c in self.components],
            "reason": self.reason,
            "updates": self.updates,
            "prior_sd": self.prior_sd,
            "intercept_sd": self.intercept_sd,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextualPolicy:
        if data.get("format") != FORMAT_VERSION:
            raise ContextError(f"stored policy has format {data.get('format')!r}; this code reads {FORMAT_VERSION}")
        return cls(
            arms=list(data["arms"]),
            encoder=FeatureEncoder.from_dict(data["encoder"]),
            settings=BanditSettings.model_validate(data["settings"]),
            posteriors=[ArmPosterior.from_dict(p) for p in data["posteriors"]],
            base=[ArmPosterior.from_dict(p) for p in data["base"]],
            log_evidence=(float(data["log_evidence"][0]), float(data["log_evidence"][1])),
            holdout_arm=data["holdout_arm"],
            components=[Component.from_dict(c) for c in data["components"]],
            reason=str(data["reason"]),
            updates=int(data["updates"]),
            prior_sd=float(data["prior_sd"]),
            intercept_sd=float(data["intercept_sd"]),
        )
