"""Request and response bodies of the CRM API (pydantic: a 422 names the field that is wrong)."""

from __future__ import annotations

import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mos_pipelines.crm.store import EVENT_TYPES

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
E164 = r"^\+[1-9][0-9]{6,14}$"
RELATIONSHIP_TYPES = (
    "works_at",
    "colleague",
    "reports_to",
    "manages",
    "introduced_by",
    "mentioned_with",
    "same_buying_group",
    "former_colleague",
)
EventType = Literal[
    "customer.created", "customer.updated", "customer.deleted", "customer.merged", "note.created", "attribute.changed"
]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]
SUBSCRIPTION_FILTERS = ("fields", "company", "country_code", "job_title", "city", "attribute", "source")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerFields(_Strict):
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=320, pattern=EMAIL, description="An email address (user@domain.tld).")
    phone_e164: str | None = Field(None, pattern=E164, description="A phone number in E.164: +4915112345678.")
    company: str | None = Field(None, max_length=200)
    job_title: str | None = Field(None, max_length=200)
    country_code: str | None = Field(None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, upper case.")
    city: str | None = Field(None, max_length=200)
    postcode: str | None = Field(None, max_length=20)
    birth_date: datetime.date | None = None


class CustomerCreate(CustomerFields):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "company": "Acme"}]
        },
    )

    @model_validator(mode="after")
    def _something(self) -> CustomerCreate:
        if not (self.email or self.phone_e164 or self.first_name or self.last_name):
            raise ValueError("a customer needs at least one of email, phone_e164, first_name, last_name")
        return self


class CustomerPatch(CustomerFields):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"job_title": "Head of Growth", "city": "Berlin"}]}
    )


class Customer(BaseModel):
    customer_id: str
    source: Literal["warehouse", "crm"] = Field(description="warehouse: dim_customers (with edits); crm: API-created")
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone_e164: str | None = None
    company: str | None = None
    job_title: str | None = None
    country_code: str | None = None
    city: str | None = None
    postcode: str | None = None
    birth_date: str | None = None
    edited_fields: list[str] = Field(description="Fields whose value is a manual edit that wins survivorship.")
    version: int
    updated_at: str | None = None


class CustomerPage(BaseModel):
    items: list[Customer]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    has_more: bool


class AttributeCreate(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "budget_amount", "value": 120000, "confidence": 0.9}]},
    )
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,79}$", description="snake_case, unique per customer")
    value: Any = None
    source: str = Field("api", max_length=40)
    confidence: float | None = Field(None, ge=0, le=1)


class AttributePatch(_Strict):
    value: Any = None
    confidence: float | None = Field(None, ge=0, le=1)


class Attribute(BaseModel):
    attribute_id: str
    customer_id: str
    name: str
    value: Any = None
    source: str
    confidence: float | None = None
    version: int
    created_at: str
    updated_at: str


class NoteCreate(_Strict):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"body": "Call with Ada: budget about 120k, decision in Q3."}]}
    )
    body: str = Field(min_length=1, max_length=20000)


class NotePatch(_Strict):
    body: str = Field(min_length=1, max_length=20000)


class Note(BaseModel):
    note_id: str
    customer_id: str
    body: str
    author: str
    version: int
    created_at: str
    updated_at: str


class RelationshipCreate(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"to_customer_id": "cus_123", "type": "reports_to", "weight": 0.8}]},
    )
    to_customer_id: str = Field(min_length=1, max_length=64)
    type: Literal[RELATIONSHIP_TYPES]  # type: ignore[valid-type]
    weight: float = Field(1.0, ge=0, le=1)
    evidence: str | None = Field(None, max_length=2000)


class RelationshipPatch(_Strict):
    type: Literal[RELATIONSHIP_TYPES] | None = None  # type: ignore[valid-type]
    weight: float | None = Field(None, ge=0, le=1)
    evidence: str | None = Field(None, max_length=2000)


class Relationship(BaseModel):
    relationship_id: str
    from_customer_id: str
    to_customer_id: str
    type: str
    weight: float
    evidence: str | None = None
    version: int
    created_at: str
    updated_at: str


class ErasureRequest(BaseModel):
    request_id: str
    customer_id: str
    requested_by: str
    status: str
    requested_at: str
    applied_at: str | None = Field(None, description="When a build removed the person everywhere (status applied)")
    removed: dict[str, int] | None = Field(
        None, description="Rows removed per warehouse table (and activation file), once applied; on GET by id"
    )


class SubscriptionCreate(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/mos",
                    "events": ["customer.updated", "note.created"],
                    "filters": {"fields": ["email", "job_title"], "country_code": "DE"},
                }
            ]
        },
    )
    url: str = Field(pattern=r"^https?://\S+$", max_length=2000)
    events: list[EventType] = Field(min_length=1)
    filters: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="`fields`: only changes of these fields; any other key (company, country_code, job_title, city, "
        "attribute, source): the changed record's value must equal it (or be one of a list).",
    )
    description: str | None = Field(None, max_length=500)

    @field_validator("filters")
    @classmethod
    def _known_filters(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(SUBSCRIPTION_FILTERS))
        if unknown:
            raise ValueError(f"unknown filter {unknown[0]!r}; expected one of {', '.join(SUBSCRIPTION_FILTERS)}")
        return value


class SubscriptionPatch(_Strict):
    url: str | None = Field(None, pattern=r"^https?://\S+$", max_length=2000)
    events: list[EventType] | None = Field(None, min_length=1)
    filters: dict[str, str | list[str]] | None = None
    description: str | None = Field(None, max_length=500)
    active: bool | None = None

    @field_validator("filters")
    @classmethod
    def _known_filters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else SubscriptionCreate._known_filters(value)


class Subscription(BaseModel):
    subscription_id: str
    url: str
    events: list[str]
    filters: dict[str, Any]
    description: str | None = None
    active: bool
    version: int
    created_at: str
    updated_at: str
    secret: str | None = Field(None, description="Returned once, at creation: keep it to verify signatures.")


class Delivery(BaseModel):
    subscription_id: str
    event_id: str
    status: str
    attempts: int
    last_error: str | None = None
    updated_at: str


ReplayStatus = Literal["dead_letter", "failed", "unknown"]


class ReplayCreate(_Strict):
    statuses: list[ReplayStatus] = Field(default_factory=lambda: ["dead_letter"])  # type: ignore[arg-type]


class Replay(BaseModel):
    replay_id: str
    subscription_id: str
    statuses: list[str]
    requested_by: str
    requested_at: str
    applied_at: str | None = None
    requeued: int | None = None
