"""The thresholds file (config/quality.yaml): the bundled one holds the issue's figures; mistakes name the file,
the key, what was expected and what was found; the suites bind their thresholds as parameters."""

from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mos_pipelines.configuration import DOMAINS, ConfigError, load_activation, load_quality
from mos_pipelines.quality.suites import SuiteError, validate

BUNDLED = DOMAINS["quality"].file


def _write(tmp_path: Path, data: dict) -> Path:
    """An override file merged over the bundled thresholds."""
    path = tmp_path / "quality.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_bundled_thresholds_are_the_issue_figures():
    config = load_quality(BUNDLED)
    assert config.missing_identifiers.max_rate == 0.05
    assert config.duplicate_customers.max_rate == 0.02
    assert config.event_volume.max_change == 0.10 and config.event_volume.min_history_days == 8
    assert config.ad_spend.min_spend == 0


@pytest.mark.parametrize(
    "section, key",
    [("missing_identifiers", "min_rows"), ("duplicate_customers", "min_customers"), ("event_volume", "min_events")],
)
def test_minimum_row_counts_must_be_whole_numbers(tmp_path, section, key):
    path = _write(tmp_path, {section: {key: 0.5}})
    with pytest.raises(ConfigError) as error:
        load_quality(path)
    assert (error.value.key, error.value.expected, error.value.got) == (f"{section}.{key}", "a whole number", 0.5)


def test_expected_days_are_read_with_their_reason(tmp_path):
    path = _write(tmp_path, {"event_volume": {"expected_days": [{"date": "2026-11-27", "reason": "Black Friday"}]}})
    (day,) = load_quality(path).event_volume.expected_days
    assert day.date == datetime.date(2026, 11, 27) and day.reason == "Black Friday"


def test_the_consent_gate_checks_each_sync_model_for_its_own_purpose():
    """The purposes are declared once, in config/activation.yaml sync_models; the notifications model selects no
    customers and has no purpose, so it is not a target."""
    targets = load_activation(DOMAINS["activation"].file).consent_targets()
    assert set(targets) == {
        ("activation.sync_email__nurture", "email_marketing"),
        ("activation.sync_crm__lifecycle_stages", "email_marketing"),
        ("activation.sync_ads__audience_members", "ad_personalization"),
    }


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    [
        ({"missing_identifiers": {"max_rate": "5%"}}, "missing_identifiers.max_rate", "a number"),
        ({"duplicate_customers": {"max_rate": 2}}, "duplicate_customers.max_rate", "a number <= 1"),
        ({"event_volume": {"min_history_days": 3}}, "event_volume.min_history_days", "a whole number >= 8"),
        ({"event_volume": {"expected_days": [{"date": "27/11"}]}}, "event_volume.expected_days[0].date", "a date"),
        (
            {"event_volume": {"expected_days": [{"date": "2026-13-01", "reason": "x"}]}},
            "event_volume.expected_days[0].date",
            "a date",
        ),
        ({"ad_spend": {"min_spnd": 0}}, "ad_spend.min_spnd", "one of the keys min_spend"),
        (
            {"consent_for_activation": {"consent_table": "dim_customer_consents"}},
            "consent_for_activation.consent_table",
            "schema.table",
        ),
        (
            {"consent_for_activation": {"allowed_statuses": []}},
            "consent_for_activation.allowed_statuses",
            "the statuses that allow activation",
        ),
        ({"spend": {}}, "spend", "one of the keys missing_identifiers"),
    ],
)
def test_mistakes_name_the_file_the_key_and_what_was_expected(tmp_path, data, key, expected):
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_quality(path)
    assert (error.value.file, error.value.key) == (str(path), key)
    assert error.value.expected.startswith(expected), error.value.expected
    assert str(error.value).startswith(f"{path}: {key} (line ")


def test_suites_take_the_threshold_as_a_parameter():
    frame = pd.DataFrame({"event_date": ["a", "b"], "missing_rate": [0.01, 0.06]})
    failed = validate("missing_identifiers", frame, {"max_rate": 0.05}, ["event_date"])
    assert not failed.success
    assert [r["event_date"] for e in failed.expectations for r in e.unexpected_rows] == ["b"]
    outcome = validate("missing_identifiers", frame, {"max_rate": 0.07}, ["event_date"])
    assert outcome.success


def test_a_missing_suite_is_named(tmp_path):
    with pytest.raises(SuiteError, match="nope.json"):
        validate("nope", pd.DataFrame({"x": [1]}), {}, [], suites_dir=tmp_path)


def test_gates_and_the_consent_checks_of_the_sync_models_are_blocking():
    import dagster as dg

    from mos_pipelines.defs.activation import checks as consent
    from mos_pipelines.defs.quality import checks
    from mos_pipelines.quality.gates import ConsentTarget

    specs = [spec for check in checks.quality_checks for spec in check.check_specs]
    assert {(s.asset_key.to_user_string(), s.name) for s in specs} == {
        ("raw/events", "missing_identifiers"),
        ("marts/fct_events", "event_volume"),
        ("marts/dim_customers", "duplicate_customers"),
        ("marts/fct_ad_spend_daily", "ad_spend"),
    }
    assert all(s.blocking for s in specs)
    declared = {
        (s.asset_key.to_user_string(), s.name, s.blocking) for c in consent.consent_checks for s in c.check_specs
    }
    assert declared == {
        ("activation/sync_email__nurture", "consent_email_marketing", True),
        ("activation/sync_crm__lifecycle_stages", "consent_email_marketing", True),
        ("activation/sync_ads__audience_members", "consent_ad_personalization", True),
    }
    (spec,) = consent.build_consent_check(ConsentTarget("activation.sync_email", "email_marketing")).check_specs
    assert spec.blocking and spec.asset_key == dg.AssetKey(["activation", "sync_email"])
    assert spec.name == "consent_email_marketing"
