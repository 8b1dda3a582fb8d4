"""Landing contracts: what each landing source must look like, and the raw table it loads into.

This module is the single definition of the landing → raw interface (DESIGN.md §2). The simulator
writes files that follow it, the ingestion assets validate against it, and the dbt sources read the
raw tables it describes. Every raw table also carries the lineage columns in ``LINEAGE_COLUMNS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal["varchar", "timestamp", "date", "double", "bigint", "boolean", "json"]

# DuckDB type of each contract field type in the raw tables.
DUCKDB_TYPES: dict[str, str] = {
    "varchar": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "double": "DOUBLE",
    "bigint": "BIGINT",
    "boolean": "BOOLEAN",
    "json": "JSON",
}

# Every raw table ends with these columns: where the row came from and what was not in the contract.
LINEAGE_COLUMNS: dict[str, str] = {
    "_source_file": "VARCHAR",  # path relative to $MOS_HOME/landing
    "_line": "BIGINT",  # 1-based physical line number of the record's first line in that file
    "_file_hash": "VARCHAR",  # sha256 of the file content (the ingestion ledger key)
    "_loaded_at": "TIMESTAMP",  # when the file was loaded (UTC)
    "_extra": "JSON",  # fields present in the file but not in the contract (null when none)
}


@dataclass(frozen=True)
class Field:
    """One field of a landing contract."""

    name: str  # name in the landing file (JSON key path for JSONL, header for CSV)
    type: FieldType = "varchar"
    required: bool = False
    column: str | None = None  # raw column name when it differs from `name`
    allowed: tuple[str, ...] | None = None  # closed vocabulary, checked case-sensitively

    @property
    def raw_column(self) -> str:
        return self.column or self.name


@dataclass(frozen=True)
class Source:
    """A landing source folder and the raw table it loads into."""

    name: str  # folder under landing/ and raw table name
    format: Literal["jsonl", "csv"]
    fields: tuple[Field, ...]
    description: str
    # At least one of these fields must be non-empty (e.g. anonymousId or userId).
    one_of: tuple[str, ...] = ()
    subfolders: bool = False  # files live in landing/<source>/<subfolder>/ (CRM system, ad platform)
    subfolder_column: str | None = None  # raw column that records the subfolder name

    @property
    def raw_table(self) -> str:
        return self.name

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")


TIMESTAMP_HELP = "ISO 8601, e.g. 2026-03-01T14:05:00Z"

EVENT_TYPES = ("track", "page", "identify", "screen", "group", "alias")
EMAIL_EVENTS = ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed")
CONSENT_PURPOSES = ("email_marketing", "ad_personalization", "analytics")
CONSENT_STATUSES = ("granted", "denied", "revoked")

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            name="events",
            format="jsonl",
            description="Segment-spec product and web events (track, page, identify, ...).",
            fields=(
                Field("messageId", required=True, column="message_id"),
                Field("type", required=True, allowed=EVENT_TYPES),
                Field("timestamp", "timestamp", required=True, column="event_timestamp"),
                Field("anonymousId", column="anonymous_id"),
                Field("userId", column="user_id"),
                Field("event"),
                Field("properties", "json"),
                Field("traits", "json"),
                Field("context", "json"),
            ),
            one_of=("anonymousId", "userId"),
        ),
        Source(
            name="crm_contacts",
            format="csv",
            description=(
                "CRM contact exports, one folder per source system with its own column names. "
                "The whole record is kept as JSON in `record`; staging maps each system's columns."
            ),
            # The per-system id column is declared in CRM_SYSTEMS; every column lands in `record`.
            fields=(),
            subfolders=True,
            subfolder_column="system",
        ),
        Source(
            name="orders",
            format="csv",
            description="Orders with amount, currency and status.",
            fields=(
                Field("order_id", required=True),
                Field("user_id"),
                Field("email"),
                Field("amount", "double", required=True),
                Field("currency", required=True),
                Field("status", required=True),
                Field("created_at", "timestamp", required=True),
            ),
        ),
        Source(
            name="ad_spend",
            format="csv",
            description="Daily ad spend per platform, account, campaign and ad group.",
            fields=(
                Field("date", "date", required=True, column="spend_date"),
                Field("platform", required=True),
                Field("account_id"),
                Field("campaign_id", required=True),
                Field("campaign_name"),
                Field("ad_group_id"),
                Field("impressions", "bigint"),
                Field("clicks", "bigint"),
                Field("spend", "double", required=True),
                Field("currency"),
                Field("conversions", "double"),
                Field("conversions_value", "double"),
            ),
            subfolders=True,
            subfolder_column="platform_folder",
        ),
        Source(
            name="email",
            format="csv",
            description="Email engagement events from the email service provider.",
            fields=(
                Field("message_id", required=True),
                Field("campaign_id", required=True),
                Field("variant_id"),
                Field("recipient_email", required=True),
                Field("event", required=True, allowed=EMAIL_EVENTS),
                Field("occurred_at", "timestamp", required=True),
            ),
        ),
        Source(
            name="consent",
            format="csv",
            description="Consent events per subject (email or user id) and purpose.",
            fields=(
                Field("subject", required=True),
                Field("purpose", required=True, allowed=CONSENT_PURPOSES),
                Field("status", required=True, allowed=CONSENT_STATUSES),
                Field("region"),
                Field("source"),
                Field("occurred_at", "timestamp", required=True),
            ),
        ),
        Source(
            name="campaigns",
            format="csv",
            description="Campaigns and their variants (one row per campaign × variant).",
            fields=(
                Field("campaign_id", required=True),
                Field("name"),
                Field("channel", required=True),
                Field("objective"),
                Field("variant_id"),
                Field("variant_name"),
                Field("is_holdout", "boolean"),
                Field("start_date", "date"),
                Field("end_date", "date"),
                Field("budget", "double"),
                Field("cost_per_send", "double"),
            ),
        ),
        Source(
            name="crm_notes",
            format="jsonl",
            description="Unstructured CRM notes about a subject (email or CRM id).",
            fields=(
                Field("note_id", required=True),
                Field("subject", required=True),
                Field("author"),
                Field("created_at", "timestamp", required=True),
                Field("text", required=True),
            ),
        ),
    )
}


@dataclass(frozen=True)
class CrmSystem:
    """How one CRM system's export names its record id and timestamps."""

    name: str
    id_column: str
    timestamp_columns: tuple[str, ...] = ()
    # strptime format of the timestamp columns; None means ISO 8601.
    timestamp_format: str | None = None
    columns: tuple[str, ...] = field(default=())  # documented columns (informational)


# Systems the staging layer knows. A folder not listed here is loaded like `generic`
# (canonical columns, `source_record_id` required) and reported as unmapped by staging.
CRM_SYSTEMS: dict[str, CrmSystem] = {
    s.name: s
    for s in (
        CrmSystem(
            "generic",
            id_column="source_record_id",
            timestamp_columns=("created_at", "updated_at"),
            columns=(
                "source_record_id",
                "first_name",
                "last_name",
                "full_name",
                "email",
                "phone",
                "company",
                "job_title",
                "country",
                "city",
                "postcode",
                "birth_date",
                "created_at",
                "updated_at",
            ),
        ),
        CrmSystem(
            "hubspot",
            id_column="Record ID",
            timestamp_columns=("Create Date", "Last Modified Date"),
            timestamp_format="%Y-%m-%d %H:%M",
            columns=(
                "Record ID",
                "First Name",
                "Last Name",
                "Email",
                "Phone Number",
                "Company Name",
                "Job Title",
                "Country/Region",
                "City",
                "Postal Code",
                "Create Date",
                "Last Modified Date",
            ),
        ),
        CrmSystem(
            "salesforce",
            id_column="Id",
            timestamp_columns=("CreatedDate", "LastModifiedDate"),
            columns=(
                "Id",
                "FirstName",
                "LastName",
                "Email",
                "Phone",
                "MobilePhone",
                "AccountName",
                "Title",
                "MailingCountry",
                "MailingCity",
                "MailingPostalCode",
                "Birthdate",
                "CreatedDate",
                "LastModifiedDate",
            ),
        ),
        CrmSystem(
            "webinar",
            id_column="registrant_id",
            timestamp_columns=("registered_at",),
            timestamp_format="%m/%d/%Y %H:%M",
            columns=(
                "registrant_id",
                "full_name",
                "email",
                "phone",
                "company",
                "country",
                "webinar_id",
                "registered_at",
                "attended",
            ),
        ),
    )
}


def crm_system(folder: str) -> CrmSystem:
    """The CRM system for a landing subfolder; unknown folders use the generic contract."""
    return CRM_SYSTEMS.get(folder, CRM_SYSTEMS["generic"])
