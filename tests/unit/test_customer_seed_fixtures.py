"""The dbt unit tests of dim_customer_lifecycle run on a copy of the shipped rules: it must not drift."""

from __future__ import annotations

from pathlib import Path

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"


def test_lifecycle_unit_test_fixture_is_the_shipped_seed():
    shipped = (DBT_PROJECT / "seeds" / "lifecycle_rules.csv").read_text(encoding="utf-8")
    fixture = (DBT_PROJECT / "tests" / "fixtures" / "lifecycle_rules_shipped.csv").read_text(encoding="utf-8")
    assert fixture == shipped, "copy seeds/lifecycle_rules.csv to tests/fixtures/lifecycle_rules_shipped.csv"
