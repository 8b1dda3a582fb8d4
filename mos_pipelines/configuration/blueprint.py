"""``config/blueprint.yaml``: how a marketer's objective is read, and the settings of goals and plans.
Read by ``mos_pipelines.blueprint`` (``mos blueprint new / validate / diff / approve``)."""

from __future__ import annotations

from pydantic import Field, field_validator

from mos_pipelines.configuration.base import (
    Count,
    DomainSettings,
    Identifier,
    Invalid,
    Positive,
    Relation,
    Section,
    Share,
    SnakeName,
    Text,
    replace,
)


class GoalMetric(Section):
    """A customer count the planner can move: customers of the segment table matching ``where``."""

    description: Text
    phrases: tuple[Text, ...] = Field(min_length=1)  # words a marketer uses for it, matched as whole words
    where: Text  # SQL predicate over the segment table's columns, e.g. "order_count > 0"
    joined_at: Identifier  # column of the segment table: when a customer entered the count (for the trend)
    bought_by: Identifier  # column of the channel table the budget buys (new_customers, conversions)


class Intents(Section):
    increase: tuple[Text, ...] = Field(min_length=1)  # verbs of a supported objective
    unsupported: dict[str, tuple[Text, ...]]  # recognised verbs this slice cannot plan for, by what they mean


class Segments(Section):
    table: Relation  # one row per customer, with the dimension columns
    dimensions: tuple[Identifier, ...] = Field(min_length=1)  # columns a segment may filter on
    synonyms: dict[Identifier, dict[Text, tuple[Text, ...]]] = replace()  # dimension -> value -> words for it


class GoalSettings(Section):
    channel_table: Relation  # daily cost and outcomes by channel (× region)
    window_days: Count  # trailing window of the measured cost per customer
    interval: Share  # coverage of every interval shown (0.9 = 5th to 95th percentile)
    prior_shape: Positive  # Gamma prior of customers per dollar: shape ...
    prior_cost_usd: Positive  # ... and rate (as dollars of pseudo-spend); small = the data decides
    max_spend_multiple: Positive  # a channel absorbs at most this multiple of its trailing daily cost
    draws: Count  # Monte Carlo draws for the goal's interval (seeded)
    seed: int
    max_horizon_months: Count  # the longest horizon offered for an unreachable goal


class PlanSettings(Section):
    lookalike_top_percent: Count  # lookalikes in tiers up to this top-N % of ml.lookalike_scores join the audience
    email_channel: Text  # the channel whose cost is sends (nurture step)
    nurture_sends_per_person: Count
    ad_destinations: tuple[Identifier, ...]  # destinations of config/activation.yaml for the ad-audience sync
    crm_destination: Identifier | None = None  # destination of config/activation.yaml for CRM routing
    checkpoint_weekday: Text


class AlertSettings(Section):
    history_runs: Count  # the median of the step's last N successful runs (same blueprint, any run)
    min_history: Count  # fewer successful runs than this before the run: no judgement yet
    slower_factor: Positive  # a run slower than this multiple of the median duration alerts
    costlier_factor: Positive  # a run costlier than this multiple of the median $ alerts
    min_seconds: float = Field(ge=0)  # the median duration is taken as at least this (sub-second noise)
    min_cost_usd: float = Field(ge=0)  # the median $ is taken as at least this


class ProgressSettings(Section):
    min_days: int = Field(ge=0)  # days of data into the horizon before "behind" can be said
    behind_tolerance: float = Field(ge=0)  # behind: below the lower bound minus this share of the planned gain


class BlueprintSettings(DomainSettings):
    metrics: dict[SnakeName, GoalMetric] = replace()
    intents: Intents
    segments: Segments
    goal: GoalSettings
    plan: PlanSettings
    alerts: AlertSettings = AlertSettings(
        history_runs=5, min_history=3, slower_factor=2.0, costlier_factor=2.0, min_seconds=1.0, min_cost_usd=1.0
    )
    progress: ProgressSettings = ProgressSettings(min_days=7, behind_tolerance=0.0)

    @field_validator("metrics")
    @classmethod
    def _some_metric(cls, value: dict[str, GoalMetric]) -> dict[str, GoalMetric]:
        if not value:
            raise Invalid("at least one goal metric")
        return value

    @field_validator("segments")
    @classmethod
    def _synonyms_of_dimensions(cls, value: Segments) -> Segments:
        for dimension in value.synonyms:
            if dimension not in value.dimensions:
                raise Invalid(
                    f"a dimension listed under segments.dimensions ({', '.join(value.dimensions)})",
                    ("synonyms", dimension),
                    dimension,
                )
        return value
