"""``config/experiments.yaml``: assignment, goals, bandit, budget and statistics settings.

Read by ``mos_pipelines.experiments``. Two values also reach dbt: ``bandit.conversion_window_days`` (the
variant mart's conversion window, ``mos__marketing_variant_conversion_window_days``) and the holdout share of the
nurture campaign (the placeholder split of ``sync_email__nurture`` before assignments exist).
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mos_pipelines.configuration.base import (
    DomainSettings,
    Invalid,
    Number,
    Positive,
    Section,
    Text,
    Whole,
    merged,
    replace,
)

Goal = Literal["click", "conversion", "revenue"]
HoldoutShare = Field(ge=0, le=0.9)


class AssignmentSettings(Section):
    salt: Text
    holdout_share: Number = HoldoutShare


class ExperimentOverride(Section):
    goal: Goal | None = None
    holdout_share: Number | None = Field(None, ge=0, le=0.9)


class BanditSettings(Section):
    segment: Literal["region", "none"]
    prior_alpha: Positive
    prior_beta: Positive
    pooling_exposures: Number = Field(ge=0)
    floor: Number = Field(ge=0, le=0.5)
    max_daily_change: Number = Field(gt=0, le=1)
    min_exposures: Whole = Field(ge=0)
    draws: Whole = Field(ge=100)
    random_seed: Whole = Field(ge=0)
    conversion_window_days: Whole = Field(ge=1)


class BudgetSettings(Section):
    total_usd: Positive
    period_days: Whole = Field(ge=1)
    lookback_days: Whole = Field(ge=1)
    channels: tuple[Text, ...] = Field(min_length=1)
    floor: Number = Field(ge=0, le=1)
    max_daily_change: Number = Field(gt=0, le=1)
    min_share: dict[str, Number] = replace()  # per channel; a channel not listed: floor
    max_share: dict[str, Number] = replace()  # per channel; a channel not listed: 1.0
    draws: Whole = Field(ge=100)
    random_seed: Whole = Field(ge=0)

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("channel names listed once each")
        return value

    @field_validator("min_share", "max_share")
    @classmethod
    def _shares(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        channels = info.data.get("channels") or ()
        for channel, share in value.items():
            if channel not in channels:
                raise Invalid(f"one of budget.channels ({', '.join(channels)})", (channel,), got=channel, has_got=True)
            if not 0 <= share <= 1:
                raise Invalid("a share between 0 and 1", (channel,))
        return value

    @model_validator(mode="after")
    def _feasible(self) -> BudgetSettings:
        low, high = self.bounds()
        for channel, lo, hi in zip(self.channels, low, high):
            if lo > hi:
                raise Invalid(f"a share >= the channel's minimum {lo:g} (floor or min_share)", ("max_share", channel))
        if sum(low) > 1 + 1e-9:
            raise Invalid(
                f"floor and min_share that add up to at most 1 (they add up to {sum(low):g}: no allocation "
                "can satisfy them)",
                ("min_share",),
            )
        if sum(high) < 1 - 1e-9:
            raise Invalid(
                f"max shares that add up to at least 1 (they add up to {sum(high):g}: the budget cannot be spent)",
                ("max_share",),
            )
        return self

    def bounds(self) -> tuple[list[float], list[float]]:
        """Per channel (in ``channels`` order): the lowest and highest share allowed."""
        low = [max(self.floor, self.min_share.get(c, 0.0)) for c in self.channels]
        high = [self.max_share.get(c, 1.0) for c in self.channels]
        return low, high


class StatsSettings(Section):
    alpha: Number = Field(gt=0, le=0.5)
    power: Number = Field(gt=0, le=0.999)
    sequential_tau: Positive


class ExperimentsSettings(DomainSettings):
    assignment: AssignmentSettings
    goals: dict[str, Goal] = merged()  # by campaign objective; `default` for any other objective
    experiments: dict[str, ExperimentOverride]  # per campaign_id
    bandit: BanditSettings
    budget: BudgetSettings
    stats: StatsSettings

    @field_validator("goals")
    @classmethod
    def _default_goal(cls, value: dict[str, str]) -> dict[str, str]:
        if "default" not in value:
            raise Invalid("a goal for any other objective (click, conversion or revenue)", ("default",))
        return value

    def goal_for(self, experiment_id: str, objective: str | None) -> str:
        override = self.experiments.get(experiment_id)
        if override and override.goal:
            return override.goal
        return self.goals.get(objective or "", self.goals["default"])

    def holdout_share_for(self, experiment_id: str) -> float:
        override = self.experiments.get(experiment_id)
        if override and override.holdout_share is not None:
            return override.holdout_share
        return self.assignment.holdout_share

    def fingerprint(self) -> str:
        """Changes when any setting changes (recorded with every allocation)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]
