"""The ``policy`` schema: its tables, ``policy.versions`` (what each policy version said) and ``policy.applied``
(who applied which version when, ``mos policy apply``)."""

from __future__ import annotations

import datetime
import json

import duckdb

from mos_pipelines.configuration.policy import PolicySettings

DDL = """
create schema if not exists policy;
create table if not exists policy.versions (
    policy_version varchar primary key,
    content json not null,
    files varchar,
    first_used_at timestamp not null
);
create table if not exists policy.icp_scores (
    customer_id varchar not null,
    account_key varchar,
    fit_score double,
    engagement_score double not null,
    fit_level varchar not null,
    engagement_level varchar not null,
    tier varchar not null,
    fit_rules_fired varchar[] not null,
    fit_rules_evaluated varchar[] not null,
    engagement_terms varchar,
    as_of_at timestamp,
    scored_at timestamp not null,
    policy_version varchar not null
);
create table if not exists policy.routing_assignments (
    assignment_id varchar not null,
    customer_id varchar not null,
    account_key varchar,
    rep_id varchar not null,
    team varchar,
    role varchar not null,
    rule varchar not null,
    reason varchar not null,
    tier varchar,
    segment varchar,
    region varchar,
    lifecycle_stage varchar,
    assigned_at timestamp not null,
    is_current boolean not null,
    superseded_at timestamp,
    superseded_by varchar,
    policy_version varchar not null
);
create table if not exists policy.applied (
    applied_at timestamp not null,
    applied_by varchar not null,
    from_version varchar not null,
    to_version varchar not null,
    source_file varchar not null,
    file_sha256 varchar not null,
    active_file varchar not null,
    tiers_changed integer not null,
    routing_changed integer not null,
    eligibility_changed integer not null,
    decisions_changed integer
);
alter table policy.applied add column if not exists decisions_changed integer;
create table if not exists policy.contact_eligibility (
    customer_id varchar not null,
    action varchar not null,
    channel varchar not null,
    allowed boolean not null,
    reasons varchar[] not null,
    time_zone varchar not null,
    time_zone_source varchar not null,
    local_time timestamp not null,
    channel_contacts_day integer not null,
    channel_contacts_7d integer not null,
    contacts_day integer not null,
    contacts_7d integer not null,
    last_conversion_at timestamp,
    evaluated_at timestamp not null,
    policy_version varchar not null
);
"""


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def record_version(con: duckdb.DuckDBPyConnection, settings: PolicySettings, now: datetime.datetime) -> str:
    """Keep the content of the settings' version in ``policy.versions`` (once per version); return the version."""
    ensure_tables(con)
    version = settings.version()
    con.execute(
        "insert into policy.versions by name select ? as policy_version, ?::json as content, ? as files, "
        "? as first_used_at on conflict do nothing",
        [version, json.dumps(settings.content()), ", ".join(str(f) for f in settings.files), naive_utc(now)],
    )
    return version


def naive_utc(moment: datetime.datetime) -> datetime.datetime:
    """A UTC time without tzinfo, as the warehouse stores timestamps."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return moment
