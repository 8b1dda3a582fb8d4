"""Each quality gate on hand-made DuckDB tables: passes on good data, fails on bad data and names
the failing rows; results land in ops.quality_results."""

from __future__ import annotations

import datetime
import json

import duckdb
import pandas as pd
import pytest

from mos_pipelines.configuration.quality import ConsentForActivation
from mos_pipelines.quality import gates
from mos_pipelines.quality.gates import ConsentTarget

CONSENT = ConsentForActivation(
    consent_table="marts.dim_customer_consents",
    customer_column="customer_id",
    purpose_column="purpose",
    status_column="status",
    allowed_statuses=("granted",),
)


@pytest.fixture
def con():
    con = duckdb.connect(":memory:")
    for schema in ("raw", "intermediate", "marts", "activation", "ops"):
        con.execute(f"create schema {schema}")
    yield con
    con.close()


def _events(con, per_day: dict[str, tuple[int, int]]) -> None:
    """raw.events and raw.quarantine with (loaded, missing-id) rows per event day, plus noise rows."""
    con.execute("create table raw.events (message_id varchar, event_timestamp timestamp, _source_file varchar)")
    con.execute(
        "create table raw.quarantine (source varchar, source_file varchar, line bigint, field varchar, "
        "reason varchar, raw_record varchar, file_hash varchar, quarantined_at timestamp)"
    )
    for day, (loaded, missing) in per_day.items():
        file = f"events/{day}.jsonl"
        con.execute(
            "insert into raw.events select 'm' || i, ?::timestamp + interval 1 second * i, ? from range(?) t(i)",
            [f"{day} 08:00:00", file, loaded],
        )
        record = '{"messageId":"x","timestamp":"' + day + 'T09:30:00Z","anonymousId":null,"userId":null}'
        con.execute(
            "insert into raw.quarantine select 'events', ?, i, 'anonymousId, userId', ?, ?, 'h', now() "
            "from range(?) t(i)",
            [file, gates.MISSING_IDS_REASON, record, missing],
        )
        # a malformed row says nothing about identifiers and must not count
        con.execute(
            "insert into raw.quarantine values ('events', ?, 999, 'timestamp', 'bad timestamp', '{}', 'h', now())",
            [file],
        )


def test_missing_identifiers_pass_below_the_rate(con):
    _events(con, {"2026-01-01": (990, 10), "2026-01-02": (960, 40)})
    result = gates.missing_identifiers(con, max_rate=0.05)
    assert result.passed
    assert result.observed == pytest.approx(0.04)
    assert result.details["overall_missing_rate"] == pytest.approx(50 / 2000)
    assert result.examples == []


def test_missing_identifiers_fail_on_one_bad_day_and_name_it(con):
    _events(con, {"2026-01-01": (990, 10), "2026-01-02": (900, 100)})
    result = gates.missing_identifiers(con, max_rate=0.05)
    assert not result.passed
    assert result.observed == pytest.approx(0.1)
    # the bad day first; the overall rate (110 of 2,000) is above the threshold too
    assert [e["event_date"] for e in result.examples] == ["2026-01-02", "all days"]
    assert result.examples[0]["missing"] == 100 and result.examples[0]["received"] == 1000
    quarantined = result.details["quarantined_examples"]
    assert quarantined and {q["source_file"] for q in quarantined} == {"events/2026-01-02.jsonl"}


def test_missing_identifiers_count_a_late_event_on_its_own_day(con):
    _events(con, {"2026-01-01": (1000, 0), "2026-01-02": (1000, 0)})
    # 60 events of Jan 1st without identifiers arrive in Jan 2nd's file: Jan 1st is the bad day
    record = '{"messageId":"x","timestamp":"2026-01-01T23:59:00Z","anonymousId":null,"userId":null}'
    con.execute(
        "insert into raw.quarantine select 'events', 'events/2026-01-02.jsonl', 500 + i, 'anonymousId, userId', "
        "?, ?, 'h', now() from range(60) t(i)",
        [gates.MISSING_IDS_REASON, record],
    )
    result = gates.missing_identifiers(con, max_rate=0.05)
    assert not result.passed and [e["event_date"] for e in result.examples] == ["2026-01-01"]


def test_missing_identifiers_at_exactly_the_threshold_fail(con):
    _events(con, {"2026-01-01": (95, 5)})
    assert not gates.missing_identifiers(con, max_rate=0.05).passed


def test_missing_identifiers_without_a_timestamp_count_overall_not_as_a_day(con):
    _events(con, {"2026-01-01": (990, 0), "2026-01-02": (1000, 0)})
    # the line: no timestamp and no identifier, the only event of its "day"
    con.execute(
        "insert into raw.quarantine values ('events', 'events/bad.jsonl', 3, 'anonymousId, userId', ?, "
        '\'{"type":"track","messageId":"x"}\', \'h\', now())',
        [gates.MISSING_IDS_REASON],
    )
    result = gates.missing_identifiers(con, max_rate=0.05, min_rows=100)
    assert result.passed
    assert result.details["missing_without_timestamp"] == 1
    assert result.details["overall_missing_rate"] == pytest.approx(1 / 1991, abs=1e-6)
    assert result.details["days"] == 2  # no "unknown" day


def test_missing_identifiers_do_not_judge_a_day_below_min_rows(con):
    _events(con, {"2026-01-01": (2000, 20), "2026-01-02": (3, 2)})
    result = gates.missing_identifiers(con, max_rate=0.05, min_rows=100)
    assert result.passed, result.examples
    assert result.details["days_below_min_rows"] == ["2026-01-02"]
    # the same small day fails once it is big enough to say something
    assert not gates.missing_identifiers(con, max_rate=0.05, min_rows=5).passed


def test_missing_identifiers_fail_on_the_overall_rate_when_no_day_is_big_enough(con):
    _events(con, {f"2026-01-{d:02d}": (60, 10) for d in range(1, 6)})  # 14 % missing, 70 events a day
    result = gates.missing_identifiers(con, max_rate=0.05, min_rows=100)
    assert not result.passed
    assert [e["event_date"] for e in result.examples] == ["all days"]
    assert result.observed == pytest.approx(50 / 350)


def _customers(con, shared: int, total: int) -> None:
    """``total`` customers, one CRM record each; the first ``shared`` pairs share an email."""
    con.execute(
        "create table marts.dim_customers as select 'c' || lpad(i::varchar, 4, '0') as customer_id from range(?) t(i)",
        [total],
    )
    con.execute(
        "create table marts.dim_customer_identity_map as select customer_id, 'crm:' || customer_id as node_key "
        "from marts.dim_customers"
    )
    con.execute(
        "create table intermediate.int_crm_contacts__normalised as "
        "select 'crm:' || customer_id as node_key, "
        "case when row_number() over (order by customer_id) <= ? "
        "     then 'twin' || ((row_number() over (order by customer_id) + 1) // 2) || '@x.com' "
        "     else customer_id || '@x.com' end as email_match_key, "
        "case when customer_id = 'c0099' then '+15550000000' end as phone_e164 "
        "from marts.dim_customers",
        [shared],
    )
    con.execute("create table intermediate.int_identity__excluded_identifiers (node_key varchar)")


def test_duplicate_customers_pass_when_nobody_shares_an_identifier(con):
    _customers(con, shared=0, total=100)
    result = gates.duplicate_customers(con, max_rate=0.02)
    assert result.passed and result.observed == 0 and result.examples == []


def test_duplicate_customers_fail_and_list_the_twins(con):
    _customers(con, shared=4, total=100)  # c0000+c0001 and c0002+c0003 share an email: 4 %
    result = gates.duplicate_customers(con, max_rate=0.02)
    assert not result.passed
    assert result.observed == pytest.approx(0.04)
    assert {(e["customer_id"], e["twin_customer_id"]) for e in result.examples} >= {
        ("c0001", "c0000"),
        ("c0000", "c0001"),
    }
    assert result.examples[0]["shared_kind"] == "email"


def test_duplicate_customers_ignore_identifiers_the_guards_excluded(con):
    _customers(con, shared=4, total=100)
    con.execute(
        "insert into intermediate.int_identity__excluded_identifiers values ('email:twin1@x.com'), ('email:twin2@x.com')"
    )
    assert gates.duplicate_customers(con, max_rate=0.02).passed


def test_duplicate_customers_on_a_tiny_table_are_reported_not_judged(con):
    _customers(con, shared=2, total=20)  # one pair among 20 customers: 10 %
    result = gates.duplicate_customers(con, max_rate=0.02, min_customers=100)
    assert result.passed and result.observed == pytest.approx(0.1)
    assert "fewer than min_customers" in result.note and len(result.examples) == 2
    assert not gates.duplicate_customers(con, max_rate=0.02, min_customers=20).passed


def _counts(events: list[int], start=datetime.date(2026, 1, 1)) -> pd.DataFrame:
    """Daily counts where each event is its own device (Poisson variance = count)."""
    days = [start + datetime.timedelta(days=i) for i in range(len(events))]
    return pd.DataFrame({"event_date": days, "events": events, "variance": events})


def test_volume_passes_with_a_note_below_eight_days_of_history():
    result = gates.judge_volume(_counts([10000] * 6 + [1000]), 0.10, 3, 8)
    assert result.passed and "not enough history" in result.note


def test_volume_passes_when_every_day_is_within_ten_percent():
    result = gates.judge_volume(
        _counts([10000, 6000, 10000, 10000, 10000, 10000, 10000, 10500, 6300, 9500, 10000, 10000, 10000, 10000]),
        0.10,
        3,
        8,
    )
    assert result.passed and result.observed == pytest.approx(0.05)
    assert result.details["days_judged"] == 7


def test_volume_fails_on_a_large_drop_and_reports_the_day():
    result = gates.judge_volume(_counts([10000] * 9 + [6000, 10000]), 0.10, 3, 8)
    assert not result.passed
    assert result.observed == pytest.approx(0.4)
    (day,) = result.examples
    assert day["event_date"] == "2026-01-10" and day["baseline_date"] == "2026-01-03"
    assert day["change"] == pytest.approx(-0.4) and day["noise_z"] < -3


def test_volume_fails_on_a_day_without_events():
    counts = _counts([10000] * 9 + [0, 10000])
    assert not gates.judge_volume(counts, 0.10, 3, 8).passed


def test_volume_change_within_sampling_noise_is_not_judged():
    # 100 vs 80 events: -20 %, but the sd of the difference is sqrt(180) = 13.4 -> z = -1.5
    result = gates.judge_volume(_counts([100] * 8 + [80]), 0.10, 3, 8)
    assert result.passed and result.observed == pytest.approx(0.2)
    assert result.details["largest_abs_noise_z"] == pytest.approx(20 / 180**0.5, rel=1e-4)


def test_volume_exempts_expected_days():
    counts = _counts([10000] * 9 + [6000, 10000])
    result = gates.judge_volume(counts, 0.10, 3, 8, {datetime.date(2026, 1, 10): "planned outage"})
    assert result.passed
    assert result.details["expected_days_exempt"] == [{"event_date": "2026-01-10", "reason": "planned outage"}]


def test_volume_reads_fct_events_per_device(con):
    rows = [(f"e{d}-{i}", f"dev{i % 50}", datetime.datetime(2026, 1, 1 + d, 12)) for d in range(9) for i in range(200)]
    con.execute("create table marts.fct_events (event_id varchar, device_key varchar, occurred_at timestamp)")
    con.executemany("insert into marts.fct_events values (?, ?, ?)", rows)
    counts = gates.daily_event_counts(con)
    assert counts["events"].tolist() == [200] * 9
    assert counts["variance"].tolist() == [50 * 4**2] * 9  # 50 devices x 4 events each
    assert gates.event_volume(con, 0.10, 3, 8).passed


def test_ad_spend_fails_on_negative_spend_and_lists_the_rows(con):
    con.execute(
        "create table marts.fct_ad_spend_daily (ad_spend_daily_id varchar, date_day date, platform varchar, "
        "campaign_id varchar, spend double)"
    )
    con.execute(
        "insert into marts.fct_ad_spend_daily values ('a', '2026-01-01', 'google_ads', 'c1', 10.5), "
        "('b', '2026-01-01', 'meta_ads', 'c2', 0)"
    )
    assert gates.ad_spend(con, 0).passed
    con.execute("insert into marts.fct_ad_spend_daily values ('c', '2026-01-02', 'meta_ads', 'c2', -3.2)")
    result = gates.ad_spend(con, 0)
    assert not result.passed and result.observed == pytest.approx(-3.2)
    assert result.examples == [
        {"ad_spend_daily_id": "c", "date_day": "2026-01-02", "platform": "meta_ads", "campaign_id": "c2", "spend": -3.2}
    ]


def _consent_tables(con) -> ConsentTarget:
    con.execute("create table marts.dim_customer_consents (customer_id varchar, purpose varchar, status varchar)")
    con.execute(
        "insert into marts.dim_customer_consents values ('c1', 'email_marketing', 'granted'), "
        "('c2', 'email_marketing', 'revoked'), ('c3', 'ad_personalization', 'granted'), "
        "('c4', 'email_marketing', 'granted')"
    )
    con.execute("create table activation.sync_email (customer_id varchar, email varchar)")
    return ConsentTarget("activation.sync_email", "email_marketing")


def test_consent_passes_when_every_selected_customer_consented(con):
    target = _consent_tables(con)
    con.execute("insert into activation.sync_email values ('c1', 'a@x.com'), ('c4', 'b@x.com'), ('c4', 'b@x.com')")
    result = gates.consent_for_activation(con, target, CONSENT)
    assert result.passed and result.observed == 0 and result.details["customers"] == 2
    assert result.check_name == "consent_email_marketing" and result.asset == "activation/sync_email"


def test_consent_fails_for_customers_without_an_allowing_row(con):
    target = _consent_tables(con)
    # c2 revoked, c3 consented to another purpose only, c5 has no row at all
    con.execute("insert into activation.sync_email values ('c1', 'a'), ('c2', 'b'), ('c3', 'c'), ('c5', 'd')")
    result = gates.consent_for_activation(con, target, CONSENT)
    assert not result.passed and result.observed == pytest.approx(0.75)
    assert [e["customer_id"] for e in result.examples] == ["c2", "c3", "c5"]
    presence_only = CONSENT.model_copy(update={"status_column": None, "allowed_statuses": ()})
    result = gates.consent_for_activation(con, target, presence_only)
    assert [e["customer_id"] for e in result.examples] == ["c3", "c5"]  # any row for the purpose counts


def test_consent_with_nobody_selected_passes(con):
    target = _consent_tables(con)
    result = gates.consent_for_activation(con, target, CONSENT)
    assert result.passed and "nothing to check" in result.note


def test_a_gate_names_the_table_it_could_not_find(con):
    with pytest.raises(gates.GateInputMissing, match="marts.fct_ad_spend_daily does not exist"):
        gates.ad_spend(con, 0)


def test_results_are_appended_to_ops_quality_results(con):
    con.execute(
        "create table marts.fct_ad_spend_daily (ad_spend_daily_id varchar, date_day date, platform varchar, "
        "campaign_id varchar, spend double)"
    )
    con.execute("insert into marts.fct_ad_spend_daily values ('c', '2026-01-02', 'meta_ads', 'c2', -1)")
    result = gates.ad_spend(con, 0)
    gates.record_results(con, "run-1", [result])
    gates.record_results(con, "run-2", [result])
    rows = con.execute(
        "select run_id, check_name, asset, passed, observed, threshold, details "
        "from ops.quality_results order by run_id"
    ).fetchall()
    assert [r[:5] for r in rows] == [
        ("run-1", "ad_spend", "marts/fct_ad_spend_daily", False, -1.0),
        ("run-2", "ad_spend", "marts/fct_ad_spend_daily", False, -1.0),
    ]
    assert json.loads(rows[0][6])["examples"][0]["ad_spend_daily_id"] == "c"


def test_volume_two_short_days_are_not_judged():
    # 40 events against 12 a week earlier is +233 % and beyond Poisson noise, but both days are short
    counts = _counts([12] + [40] * 6 + [40])
    assert not gates.judge_volume(counts, 0.10, 3, 8).passed
    result = gates.judge_volume(counts, 0.10, 3, 8, min_events=100)
    assert result.passed and result.details["min_events"] == 100
