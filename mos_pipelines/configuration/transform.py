"""``config/transform.yaml``: the dbt project's settings, handed to every dbt invocation as ``--vars``.

Keys are the dbt var names (``mos__*``), so ``var('mos__session_timeout_minutes')`` in a model greps to the line
that sets it. Vars whose value another domain owns are not here: ``mos_pipelines.configuration.dbt`` adds them
(the duplicate-customer gate from ``config/quality.yaml``, the sync models from ``config/activation.yaml``, the
variant conversion window from ``config/experiments.yaml``).
"""

from __future__ import annotations

import datetime
import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from mos_pipelines.configuration.base import (
    Count,
    DomainSettings,
    Invalid,
    NonNegative,
    Positive,
    Section,
    Share,
    Text,
    Whole,
)

TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")


class PeoplePerIdentifier(Section):
    email: Count
    phone: Count
    anonymous_id: Count


class Survivorship(Section):
    rule: Literal["source_priority", "most_recent", "most_complete"]
    sources: tuple[Text, ...] | None = None  # source_priority only: the sources in order

    @model_validator(mode="after")
    def _sources(self) -> Survivorship:
        if self.rule == "source_priority" and not self.sources:
            raise Invalid(
                "a list of sources in order (source_priority takes the first listed source with a value)", ("sources",)
            )
        return self


class PositionWeights(Section):
    first: Share
    last: Share


class CustomerSegment(Section):
    segment: Text
    max_contacts: Count | None  # null: no upper bound


class EngagementWeights(Section):
    session: NonNegative
    email_open: NonNegative
    email_click: NonNegative
    signup: NonNegative
    webinar_registration: NonNegative
    demo_request: NonNegative


class BuyingGroup(Section):
    personas: tuple[Text, ...] = Field(min_length=1)
    engaged_min_score: NonNegative
    required_personas: tuple[Text, ...]
    min_personas: Count


class TransformSettings(DomainSettings):
    replace_values: ClassVar[bool] = True  # an override sets a var whole, as dbt's own --vars does

    # Events and sessions
    mos__session_timeout_minutes: Count
    mos__sessions_lookback_days: Whole = Field(ge=0)
    mos__incremental_lookback_days: Whole = Field(ge=0)
    mos__crm_mapped_systems: tuple[Text, ...]
    mos__completed_order_statuses: tuple[Text, ...] = Field(min_length=1)
    mos__organic_referrer_domains: tuple[Text, ...]
    # Identity resolution
    mos__identity_max_match_clusters_per_customer: Count
    mos__identity_max_size_over_typical: Positive
    mos__identity_min_customers_for_size_quantile: Count
    mos__identity_min_crm_records_flagged: Count
    mos__identity_max_users_per_customer: Count
    mos__identity_max_people_per_identifier: PeoplePerIdentifier
    mos__identity_email_click_token_param: Text
    mos__identity_max_label_iterations: Count
    mos__identity_company_legal_suffixes: tuple[Text, ...]
    mos__survivorship: dict[str, Survivorship]
    # Marketing marts
    mos__attribution_lookback_days: Count
    mos__attribution_position_based_weights: PositionWeights
    mos__attribution_click_session_window_seconds: Whole = Field(ge=0)
    mos__marketing_kpi_attribution_model: Literal["first_touch", "last_touch", "linear", "position_based"]
    mos__marketing_kpi_conversion_types: tuple[Text, ...] = Field(min_length=1)
    mos__marketing_new_customer_conversion_type: Text
    mos__marketing_revenue_conversion_types: tuple[Text, ...] = Field(min_length=1)
    mos__marketing_webinar_start_time: Text
    mos__marketing_platform_channels: dict[str, Text]
    mos__marketing_customer_segments: tuple[CustomerSegment, ...] = Field(min_length=1)
    mos__marketing_gross_margin: Share
    # Customers
    mos__consent_opt_in_regions: tuple[Text, ...]
    mos__customers_as_of: Text | None
    mos__personal_email_domains: tuple[Text, ...]
    mos__engagement_score_weights: EngagementWeights
    mos__buying_group: BuyingGroup
    mos__lifecycle_stages: tuple[Text, ...] = Field(min_length=1)
    mos__lifecycle_default_stage: Text
    mos__lifecycle_sales_crm_systems: tuple[Text, ...]

    @field_validator("mos__attribution_position_based_weights")
    @classmethod
    def _weights(cls, value: PositionWeights) -> PositionWeights:
        if value.first + value.last > 1 + 1e-9:
            raise Invalid(
                f"first + last <= 1 (the middle touches share the rest); they add up to {value.first + value.last:g}",
                ("last",),
            )
        return value

    @field_validator("mos__marketing_webinar_start_time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not TIME_OF_DAY.match(value):
            raise ValueError("a UTC time of day HH:MM:SS, e.g. '16:00:00'")
        return value

    @field_validator("mos__customers_as_of", mode="before")
    @classmethod
    def _timestamp_text(cls, value: Any) -> Any:
        """A date or timestamp YAML parsed is handed to dbt as ISO text."""
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()
        return value

    @field_validator("mos__buying_group")
    @classmethod
    def _required_personas(cls, value: BuyingGroup) -> BuyingGroup:
        for index, persona in enumerate(value.required_personas):
            if persona not in value.personas:
                raise Invalid(f"one of the personas ({', '.join(value.personas)})", ("required_personas", index))
        return value

    @field_validator("mos__lifecycle_default_stage")
    @classmethod
    def _known_stage(cls, value: str, info: Any) -> str:
        stages = info.data.get("mos__lifecycle_stages") or ()
        if stages and value not in stages:
            raise ValueError(f"one of mos__lifecycle_stages ({', '.join(stages)})")
        return value

    def dbt_vars(self) -> dict[str, Any]:
        """The vars this file declares, as dbt reads them (lists, mappings, null)."""
        values = self.model_dump(mode="json")
        values["mos__survivorship"] = {
            attribute: rule.model_dump(mode="json", exclude_none=True)
            for attribute, rule in self.mos__survivorship.items()
        }
        return values
