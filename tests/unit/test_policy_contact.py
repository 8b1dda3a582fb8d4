"""Contact policy: caps counted on the person's local days, quiet hours, cool-down, per-action eligibility, and
``policy.contact_eligibility`` built over a real activation ledger in a DuckDB file."""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mos_pipelines.activation import ledger
from mos_pipelines.configuration import DOMAINS, load_policy
from mos_pipelines.policy import contact

UTC = datetime.UTC


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path):
    # the bundled policy with quiet hours 22:00-06:00, so 06:30 UTC is outside them in both zones used below
    path = tmp_path / "policy.yaml"
    path.write_text("contact:\n  quiet_hours: {start: '22:00', end: '06:00'}\n")
    return load_policy(path).contact


def persons(settings, *rows: tuple[str, str | None, str, str, set[str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "country", "lifecycle_stage", "tier", "consents"])
    zones = [contact.zone_for(c, None, settings) for c in frame["country"]]
    frame["time_zone"] = [z for z, _ in zones]
    frame["time_zone_source"] = [s for _, s in zones]
    return frame.drop(columns=["country"])


def contacts(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [(c, ch, at(t).replace(tzinfo=None)) for c, ch, t in rows], columns=["customer_id", "channel", "contacted_at"]
    )


NO_CONVERSIONS = pd.DataFrame({"customer_id": [], "conversion_type": [], "converted_at": []})
EMAIL = {"email_marketing"}


def test_zones_come_from_the_country(settings):
    assert contact.zone_for("AU", None, settings) == ("Australia/Sydney", "country AU (policy.yaml by_country)")
    assert contact.zone_for("jp", None, settings) == ("Asia/Tokyo", "country JP (tz database)")
    assert contact.zone_for(None, None, settings) == ("UTC", "default")
    assert contact.zone_for("XX", None, settings) == ("UTC", "default")
    assert contact.zone_for("AU", "Australia/Perth", settings) == ("Australia/Perth", "explicit")


def test_a_daily_cap_counts_the_persons_local_day(settings):
    """An email at 23:30 UTC on 1 March is 10:30 on 2 March in Sydney: the same local day as a request at 06:30 UTC
    on 2 March (17:30 in Sydney), so Sydney's daily email cap of 1 is reached; in UTC it was the day before."""
    people = persons(settings, ("syd", "AU", "lead", "B", EMAIL), ("utc", None, "lead", "B", EMAIL))
    sent = contacts(("syd", "email", "2026-03-01T23:30"), ("utc", "email", "2026-03-01T23:30"))
    sydney = contact.check("syd", "nurture_email", at("2026-03-02T06:30"), people, sent, NO_CONVERSIONS, settings)
    assert not sydney.allowed
    assert sydney.reasons == ("email cap 1/day reached (1 today, local time)",)
    assert sydney.time_zone == "Australia/Sydney" and sydney.local_time == datetime.datetime(2026, 3, 2, 17, 30)
    in_utc = contact.check("utc", "nurture_email", at("2026-03-02T06:30"), people, sent, NO_CONVERSIONS, settings)
    assert in_utc.allowed and in_utc.reasons == ()


def test_the_seven_day_cap_is_this_local_day_and_the_six_before(settings):
    people = persons(settings, ("syd", "AU", "lead", "B", EMAIL))
    request = at("2026-03-09T06:30")  # 17:30 on 9 March in Sydney: the window is 3 to 9 March, local
    within = contacts(
        ("syd", "email", "2026-03-02T23:30"),  # 3 March in Sydney (2 March in UTC): counts
        ("syd", "email", "2026-03-05T02:00"),
        ("syd", "email", "2026-03-07T02:00"),
    )
    result = contact.check("syd", "nurture_email", request, people, within, NO_CONVERSIONS, settings)
    assert not result.allowed and "email cap 3/7 days reached (3 in the last 7 local days)" in result.reasons
    before = contacts(
        ("syd", "email", "2026-03-02T12:00"),  # 2 March 23:00 in Sydney: outside the window
        ("syd", "email", "2026-03-05T02:00"),
        ("syd", "email", "2026-03-07T02:00"),
        ("syd", "email", "2026-03-09T08:00"),  # after the request: never counts
    )
    assert contact.check("syd", "nurture_email", request, people, before, NO_CONVERSIONS, settings).allowed


def test_the_all_channel_cap_counts_every_counted_channel(settings):
    people = persons(settings, ("p", None, "lead", "B", EMAIL))
    sent = contacts(
        ("p", "webhook", "2026-03-02T09:00"),
        ("p", "webhook", "2026-03-03T09:00"),
        ("p", "email", "2026-03-04T09:00"),
        ("p", "email", "2026-03-05T09:00"),
        ("p", "google_customer_match", "2026-03-05T10:00"),  # not a counted channel
    )
    result = contact.check("p", "nurture_email", at("2026-03-06T09:00"), people, sent, NO_CONVERSIONS, settings)
    assert result.reasons == ("all-channel cap 4/7 days reached (4 in the last 7 local days)",)
    # an uncapped action (an audience) is not stopped by caps
    assert contact.check(
        "p",
        "paid_retargeting",
        at("2026-03-06T09:00"),
        people.assign(consents=[{"ad_personalization"}]),
        sent,
        NO_CONVERSIONS,
        settings,
    ).allowed


def test_quiet_hours_are_the_persons_local_night(settings):
    people = persons(settings, ("ny", "US", "lead", "B", EMAIL))
    night = at("2026-03-02T04:00")  # 23:00 on 1 March in New York
    result = contact.check("ny", "nurture_email", night, people, contacts(), NO_CONVERSIONS, settings)
    assert result.reasons == ("quiet hours 22:00–06:00 in America/New_York (local time 23:00)",)
    assert contact.check("ny", "route_to_sales", night, people, contacts(), NO_CONVERSIONS, settings).allowed
    assert contact.check(
        "ny", "nurture_email", at("2026-03-02T15:00"), people, contacts(), NO_CONVERSIONS, settings
    ).allowed


def test_no_action_marked_cooldown_within_the_cooldown_after_a_conversion(settings):
    people = persons(settings, ("p", None, "lead", "B", EMAIL))
    orders = pd.DataFrame(
        {
            "customer_id": ["p", "p"],
            "conversion_type": ["order", "sign_up"],
            "converted_at": [datetime.datetime(2026, 3, 1, 10), datetime.datetime(2026, 3, 8, 10)],
        }
    )
    during = contact.check("p", "nurture_email", at("2026-03-05T12:00"), people, contacts(), orders, settings)
    assert not during.allowed and during.reasons[0].startswith("cool-down: converted at 2026-03-01 10:00 UTC")
    assert contact.check("p", "route_to_sales", at("2026-03-05T12:00"), people, contacts(), orders, settings).allowed
    # 7 days after the order; the sign-up does not start a cool-down
    assert contact.check("p", "nurture_email", at("2026-03-08T10:00"), people, contacts(), orders, settings).allowed


def test_per_action_eligibility_names_every_reason(settings):
    people = persons(settings, ("p", None, "customer", "D", set()))
    result = contact.check("p", "route_to_sales", at("2026-03-02T12:00"), people, contacts(), NO_CONVERSIONS, settings)
    assert result.reasons == (
        "lifecycle stage customer is not one of lead, mql, sql, opportunity",
        "ICP tier D is not one of A, B, C",
    )
    unknown = contact.check(
        "ghost", "nurture_email", at("2026-03-02T12:00"), people, contacts(), NO_CONVERSIONS, settings
    )
    assert "no email_marketing consent" in unknown.reasons and unknown.time_zone == "UTC"
    with pytest.raises(KeyError, match="unknown action"):
        contact.check("p", "carrier_pigeon", at("2026-03-02T12:00"), people, contacts(), NO_CONVERSIONS, settings)


def test_the_eligibility_table_reads_the_activation_ledger(tmp_path: Path):
    settings = load_policy(DOMAINS["policy"].file).contact
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(
        """
        create schema marts;
        create table marts.dim_customer_features as
            select * from (values ('c1', 'AU'), ('c2', 'US'), ('c3', null)) t(customer_id, country_code);
        create table marts.dim_customer_lifecycle as
            select * from (values ('c1', 'lead'), ('c2', 'mql'), ('c3', 'visitor')) t(customer_id, lifecycle_stage);
        create table marts.dim_customer_consents as
            select * from (values ('c1', 'email_marketing', true), ('c2', 'email_marketing', true))
            t(customer_id, purpose, is_consented);
        """
    )
    ledger.ensure_tables(con)
    now = datetime.datetime(2026, 3, 2, 6, 30)  # 17:30 in Sydney, 01:30 in New York
    con.execute(
        """
        insert into ops.activation_ledger (destination, record_key, customer_id, operation, payload_hash,
            idempotency_key, status, attempts, change_seq, is_present, first_seen_at, updated_at)
        values ('email__nurture', 'k1', 'c1', 'upsert', 'h', 'i1', 'acknowledged', 1, 1, true, ?, ?),
               ('email__nurture', 'k2', 'c2', 'upsert', 'h', 'i2', 'failed', 1, 1, false, ?, ?)
        """,
        [now] * 4,
    )
    con.execute(
        """
        insert into ops.activation_attempts (run_id, destination, channel, record_key, status, operation, attempted_at)
        values ('r', 'email__nurture', 'email', 'k1', 'acknowledged', 'upsert', timestamp '2026-03-01 23:30'),
               ('r', 'email__nurture', 'email', 'k2', 'failed', 'upsert', timestamp '2026-03-01 23:30')
        """
    )
    frame, notes = contact.eligibility_table(con, settings, "v1", now.replace(tzinfo=UTC))
    assert "policy.icp_scores does not exist" in " ".join(notes)
    table = con.execute("select * from policy.contact_eligibility").df().set_index(["customer_id", "action"])
    assert len(table) == 3 * len(settings.actions)
    c1 = table.loc[("c1", "nurture_email")]
    assert not c1["allowed"] and "email cap 1/day reached (1 today, local time)" in list(c1["reasons"])
    assert (c1["channel_contacts_day"], c1["time_zone"]) == (1, "Australia/Sydney")
    c2 = table.loc[("c2", "nurture_email")]  # its send failed: no contact; 01:30 in New York is quiet
    assert c2["channel_contacts_day"] == 0 and any(r.startswith("quiet hours") for r in c2["reasons"])
    assert set(table["policy_version"]) == {"v1"}
