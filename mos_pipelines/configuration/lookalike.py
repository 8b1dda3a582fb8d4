"""``config/lookalike.yaml``: how lookalike models are fitted, when a fit is degraded, and the audiences.

Read by ``mos_pipelines.lookalike`` (the ``ml.lookalike_scores`` asset and ``mos lookalike score``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mos_pipelines.configuration.base import (
    Count,
    DomainSettings,
    Invalid,
    Number,
    Section,
    Share,
    SnakeName,
    Text,
    Whole,
    replace,
    unique,
)


class ModelSettings(Section):
    """How a lookalike model is fitted. The first five are in the file; the caps below are fixed defaults."""

    kind: Literal["gradient_boosting", "linear"]  # linear: transparent, coefficients as importances
    negatives_per_positive: Number = Field(gt=0)  # population sample size per seed member used in training
    holdout_share: Number = Field(gt=0, lt=1)  # of the seed, kept out of training for evaluation
    min_seed_size: Count
    random_state: Whole
    max_negatives: Count = 100_000
    max_train_seed: Count = 50_000  # larger seeds are sampled (ranking quality saturates long before)
    max_eval_population: Count = 100_000  # unseen population members the held-out seed is ranked against
    calibration_share: Number = Field(0.2, gt=0, lt=1)  # of the training rows, kept out of the fit to calibrate
    max_category_share: Share = 0.5  # a text column with more distinct values than this share of rows is an id


class Degradation(Section):
    """A fit is degraded when, against the last accepted fit of its audience, these dropped by more, and by more than
    ``noise_z`` standard errors of the difference of the two holdouts' figures (0: any drop above the amount)."""

    max_recall_at_10_drop: Share
    max_auc_drop: Share
    noise_z: Number = Field(1.96, ge=0)


class LearnFrom(Section):
    seed: Text
    population: Text


class Audience(Section):
    name: SnakeName
    description: str = ""
    seed: Text  # SQL predicate over marts.dim_customer_features
    population: Text
    features: tuple[Text, ...] = Field(min_length=1)  # default: default_features
    learn_from: LearnFrom | None = None  # a wider seed and population the model also trains on

    def definition_hash(self, settings: ModelSettings) -> str:
        """Changes when the seed, population, features or model settings change: a new baseline."""
        parts: list[Any] = [self.seed, self.population, list(self.features), settings.model_dump()]
        if self.learn_from:
            parts.append([self.learn_from.seed, self.learn_from.population])
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


class LookalikeSettings(DomainSettings):
    model: ModelSettings
    degradation: Degradation
    default_features: tuple[Text, ...]
    audiences: tuple[Audience, ...] = replace()

    @model_validator(mode="before")
    @classmethod
    def _default_features(cls, data: Any) -> Any:
        """An audience without its own ``features`` uses ``default_features``."""
        if isinstance(data, dict) and isinstance(data.get("audiences"), list):
            default = data.get("default_features")
            audiences = []
            for index, audience in enumerate(data["audiences"]):
                if isinstance(audience, dict) and audience.get("features") is None:
                    if not default:
                        raise Invalid(
                            "features: list them here or under default_features", ("audiences", index, "features")
                        )
                    audience = {**audience, "features": default}
                audiences.append(audience)
            data = {**data, "audiences": audiences}
        return data

    @field_validator("audiences")
    @classmethod
    def _unique_names(cls, value: tuple[Audience, ...]) -> tuple[Audience, ...]:
        return unique(value, "name", "an audience name")
