"""The thresholds file: the bundled one is valid and agrees with dbt; mistakes name the key; the
suites bind their thresholds as parameters."""

from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mos_pipelines.quality.config import THRESHOLDS_FILE, QualityConfigError, load_config
from mos_pipelines.quality.suites import SuiteError, validate
from mos_pipelines.settings import DBT_PROJECT_DIR


def _write(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(THRESHOLDS_FILE.read_text())
    change(data)
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_bundled_thresholds_are_the_issue_figures():
    config = load_config()
    assert config.missing_identifiers_max_rate == 0.05
    assert config.duplicate_customers_max_rate == 0.02
    assert config.volume_max_change == 0.10 and config.volume_min_history_days == 8
    assert config.min_spend == 0
    assert {(t.table, t.purpose) for t in config.consent.targets} == {
        ("activation.sync_email__nurture", "email_marketing"),
        ("activation.sync_crm__lifecycle_stages", "email_marketing"),
        ("activation.sync_ads__audience_members", "ad_personalization")}


def test_duplicate_rate_threshold_matches_the_dbt_identity_gate():
    dbt_vars = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    assert dbt_vars["mos__identity_max_duplicate_rate"] == load_config().duplicate_customers_max_rate
    assert dbt_vars["mos__identity_min_customers_for_duplicate_rate"] == load_config().duplicate_customers_min_customers


@pytest.mark.parametrize("section, key", [("missing_identifiers", "min_rows"), ("duplicate_customers", "min_customers"),
                                          ("event_volume", "min_events")])
def test_minimum_row_counts_must_be_whole_numbers(tmp_path, section, key):
    path = _write(tmp_path, lambda d: d[section].update({key: 0.5}))
    with pytest.raises(QualityConfigError, match=rf"{section}\.{key}: expected a whole number >= 1, got 0.5"):
        load_config(path)


def test_expected_days_are_read_with_their_reason(tmp_path):
    path = _write(tmp_path, lambda d: d["event_volume"].update(
        expected_days=[{"date": "2026-11-27", "reason": "Black Friday"}]))
    (day,) = load_config(path).volume_expected_days
    assert day.date == datetime.date(2026, 11, 27) and day.reason == "Black Friday"


def test_consent_targets_are_read(tmp_path):
    path = _write(tmp_path, lambda d: d["consent_for_activation"].update(
        targets=[{"table": "activation.sync_email", "purpose": "email_marketing"}]))
    (target,) = load_config(path).consent.targets
    assert (target.table, target.purpose) == ("activation.sync_email", "email_marketing")


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["missing_identifiers"].update(max_rate="5%"), "missing_identifiers.max_rate: expected a number"),
    (lambda d: d["duplicate_customers"].update(max_rate=2), r"duplicate_customers.max_rate: 2 is outside"),
    (lambda d: d["event_volume"].update(min_history_days=3), "event_volume.min_history_days"),
    (lambda d: d["event_volume"].update(expected_days=[{"date": "27/11"}]), r"event_volume.expected_days\[0\]"),
    (lambda d: d["event_volume"].update(expected_days=[{"date": "2026-13-01", "reason": "x"}]),
     r"expected_days\[0\].date: not a date"),
    (lambda d: d["ad_spend"].update(min_spnd=0), "ad_spend: unknown key"),
    (lambda d: d["consent_for_activation"].update(targets=[{"table": "sync_email", "purpose": "x"}]),
     r"targets\[0\].table: expected schema.table"),
    (lambda d: d.update(spend={}), "unknown section"),
])
def test_mistakes_name_the_file_and_the_key(tmp_path, change, message):
    path = _write(tmp_path, change)
    with pytest.raises(QualityConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


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

    from mos_pipelines.defs.quality import checks
    from mos_pipelines.quality.config import ConsentTarget

    specs = [spec for check in checks.quality_checks for spec in check.check_specs]
    assert {(s.asset_key.to_user_string(), s.name) for s in specs} == {
        ("raw/events", "missing_identifiers"), ("marts/fct_events", "event_volume"),
        ("marts/dim_customers", "duplicate_customers"), ("marts/fct_ad_spend_daily", "ad_spend")}
    assert all(s.blocking for s in specs)
    consent = {(s.asset_key.to_user_string(), s.name, s.blocking) for c in checks.consent_checks for s in c.check_specs}
    assert consent == {("activation/sync_email__nurture", "consent_email_marketing", True),
                       ("activation/sync_crm__lifecycle_stages", "consent_email_marketing", True),
                       ("activation/sync_ads__audience_members", "consent_ad_personalization", True)}
    (spec,) = checks.build_consent_check(ConsentTarget("activation.sync_email", "email_marketing")).check_specs
    assert spec.blocking and spec.asset_key == dg.AssetKey(["activation", "sync_email"])
    assert spec.name == "consent_email_marketing"
