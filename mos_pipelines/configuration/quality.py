"""``config/quality.yaml``: the thresholds of the blocking quality gates (read by ``mos_pipelines.quality``).

The GX suites in ``quality/suites/`` hold no numbers: these values are bound as their parameters. The
duplicate-customer rate and its minimum are also handed to dbt (``mos__identity_max_duplicate_rate``,
``mos__identity_min_customers_for_duplicate_rate``); the consent gate's targets are the activation sync models
and their purposes (``config/activation.yaml`` ``sync_models``).
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from mos_pipelines.configuration.base import (
    Count,
    Day,
    DomainSettings,
    Identifier,
    NonNegative,
    Number,
    Relation,
    Section,
    Share,
    Text,
    Whole,
)


class MissingIdentifiers(Section):
    max_rate: Share
    min_rows: Count


class DuplicateCustomers(Section):
    max_rate: Share
    min_customers: Count


class ExpectedDay(Section):
    date: Day
    reason: Text


class EventVolume(Section):
    max_change: NonNegative
    noise_z: NonNegative
    min_history_days: Whole
    min_events: Count
    expected_days: tuple[ExpectedDay, ...]

    @field_validator("min_history_days")
    @classmethod
    def _a_week_and_a_day(cls, value: int) -> int:
        if value < 8:
            raise ValueError("a whole number >= 8 (a week plus a day)")
        return value

    @field_validator("expected_days", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return () if value is None else value


class AdSpend(Section):
    min_spend: Number


class ConsentForActivation(Section):
    consent_table: Relation
    customer_column: Identifier  # in the consent table and in each sync model
    purpose_column: Identifier
    status_column: Identifier | None  # null: any row counts
    allowed_statuses: tuple[Text, ...]

    @field_validator("allowed_statuses")
    @classmethod
    def _statuses(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if info.data.get("status_column") is not None and not value:
            raise ValueError("the statuses that allow activation, e.g. [granted] (or status_column: null)")
        return value


class QualitySettings(DomainSettings):
    missing_identifiers: MissingIdentifiers
    duplicate_customers: DuplicateCustomers = Field(description="also handed to dbt")
    event_volume: EventVolume
    ad_spend: AdSpend
    consent_for_activation: ConsentForActivation
