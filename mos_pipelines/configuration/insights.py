"""``config/insights.yaml``: candidate insight families, what makes a candidate an insight, who is notified.

Read by ``mos_pipelines.insights``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from mos_pipelines.configuration.base import (
    Count,
    DomainSettings,
    Flag,
    NonNegative,
    Number,
    Section,
    Share,
    Text,
    Whole,
    replace,
    unique,
)

FAMILIES = (
    "channel_comparison",
    "region_comparison",
    "icp_comparison",
    "anomaly",
    "budget_pacing",
    "lookalike_degradation",
    "experiments",
)


class ChannelComparison(Section):
    enabled: Flag
    metrics: tuple[Text, ...]
    slice_by: tuple[Text, ...]
    include_all: Flag
    residual_slices: tuple[Text, ...]


class RegionComparison(Section):
    enabled: Flag
    metrics: tuple[Text, ...]


class IcpComparison(Section):
    enabled: Flag


class Anomaly(Section):
    enabled: Flag
    metrics: tuple[Text, ...] = Field(min_length=1)
    by_channel: Flag
    baseline_weeks: Count
    min_baseline_weeks: Count


class BudgetPacing(Section):
    enabled: Flag
    days: Count


class LookalikeDegradation(Section):
    enabled: Flag
    min_recall_drop: Share


class Experiments(Section):
    enabled: Flag
    metrics: tuple[Text, ...]
    holdout_max_sent_share: Share


class Reader(Section):
    id: Text
    name: Text  # default: the id
    objectives: tuple[Text, ...] = Field(min_length=1)
    channels: tuple[Text, ...] = ()  # optional: insights about other channels count as another objective
    regions: tuple[Text, ...] = ()
    daily_cap: Whole = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("name") is None and "id" in data:
            return {**data, "name": data["id"]}
        return data

    @property
    def reader_id(self) -> str:
        return self.id


class Notifications(Section):
    renotify_min_change: NonNegative
    not_useful_factor: NonNegative
    useful_factor: NonNegative
    other_objective_relevance: Share
    min_score: NonNegative


class Report(Section):
    top: Count


class InsightsSettings(DomainSettings):
    window_days: Whole = Field(ge=7)
    confidence_level: Number = Field(ge=0.5, le=0.999)
    max_q_value: Share
    min_relative_effect: NonNegative
    min_impact_usd: NonNegative
    min_events: Count
    min_orders: Count
    shift_share: Share
    channel_comparison: ChannelComparison
    region_comparison: RegionComparison
    icp_comparison: IcpComparison = IcpComparison(enabled=True)
    anomaly: Anomaly
    budget_pacing: BudgetPacing
    lookalike_degradation: LookalikeDegradation
    experiments: Experiments
    readers: tuple[Reader, ...] = replace()
    notifications: Notifications
    report: Report

    @field_validator("readers")
    @classmethod
    def _unique_ids(cls, value: tuple[Reader, ...]) -> tuple[Reader, ...]:
        return unique(value, "id", "a reader id")

    def family(self, name: str) -> Section:
        """The settings of one candidate family (one of ``FAMILIES``)."""
        return getattr(self, name)

    def enabled(self, name: str) -> bool:
        return bool(self.family(name).enabled)  # type: ignore[attr-defined]

    @property
    def report_top(self) -> int:
        return self.report.top
