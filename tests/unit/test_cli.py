"""The `mos` command fails with a clear message and a non-zero exit on bad setups."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mos_pipelines.cli import app

runner = CliRunner()


@pytest.fixture
def mos_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_run_without_a_landing_folder_says_where_it_looked(mos_home):
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "Nothing to build" in result.output and str(mos_home / "landing") in result.output.replace("\n", "")


def test_run_on_an_empty_landing_zone_says_what_to_put_where(mos_home):
    (mos_home / "landing" / "events").mkdir(parents=True)  # folders, but no file in them
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    message = result.output.replace("\n", "")
    assert "Nothing to build: no files under" in message and "Traceback" not in message
    for folder in ("events/ (JSONL)", "crm_contacts/<system>/ (CSV)", "ad_spend/<platform>/ (CSV)", "orders/ (CSV)"):
        assert folder in message


def test_run_on_an_unreadable_warehouse_names_the_file(mos_home):
    (mos_home / "landing" / "orders").mkdir(parents=True)
    (mos_home / "landing" / "orders" / "orders.csv").write_text("order_id,amount,currency,status,created_at\n")
    (mos_home / "warehouse.duckdb").write_bytes(b"this is not a duckdb file" * 100)
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "warehouse.duckdb" in result.output and "unreadable" in result.output


def test_run_with_an_invalid_identity_config_names_the_key_before_running_anything(mos_home, tmp_path, monkeypatch):
    (mos_home / "landing" / "crm_contacts" / "generic").mkdir(parents=True)
    (mos_home / "landing" / "crm_contacts" / "generic" / "contacts.csv").write_text("source_record_id\n1\n")
    config = tmp_path / "identity.yaml"
    config.write_text(
        "comparisons:\n  - name: n\n    column: last_name_norm\n    levels: [{levenshtein: {}}]\n"
        "blocking_rules: [[last_name_norm]]\n"
    )
    monkeypatch.setenv("MOS_IDENTITY_CONFIG", str(config))
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    output = result.output.replace("\n", "")
    assert f"{config}: comparisons[0].levels[0] (line 4): expected a levenshtein level with `at_most`" in output
    assert not (mos_home / "dagster" / "storage").exists()  # no run was started


def test_identity_explain_without_a_warehouse_tells_what_to_run(mos_home):
    result = runner.invoke(app, ["identity", "explain", "generic:1", "generic:2"])
    assert result.exit_code == 2
    assert "mos run" in result.output


def test_summary_without_a_warehouse_tells_what_to_run(mos_home):
    result = runner.invoke(app, ["summary"])
    assert result.exit_code == 2
    assert "mos run" in result.output


def test_generate_with_a_missing_scenario_file_fails(mos_home, tmp_path):
    result = runner.invoke(app, ["generate", "--scenario", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "Scenario file not found" in result.output


def test_run_with_a_selection_matching_nothing_fails(mos_home):
    (mos_home / "landing" / "orders").mkdir(parents=True)
    (mos_home / "landing" / "orders" / "orders.csv").write_text("order_id,amount,currency,status,created_at\n")
    result = runner.invoke(app, ["run", "--select", "key:no/such_asset"])
    assert result.exit_code == 2
    assert "matches no asset" in result.output
