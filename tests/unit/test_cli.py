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


def test_run_on_spark_without_java_says_what_is_missing_before_running_anything(mos_home, tmp_path, monkeypatch):
    import importlib.util

    monkeypatch.setenv("PATH", str(tmp_path / "no-java"))  # no `java` on PATH
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("MOS_ENGINE", "duckdb")  # `--engine` sets it in this process: restored after the test
    result = runner.invoke(app, ["run", "--engine", "spark"])
    assert result.exit_code == 2
    output = result.output.replace("\n", "")
    installed = (
        importlib.util.find_spec("pyspark") is not None and importlib.util.find_spec("dbt.adapters.spark") is not None
    )
    missing = "Spark needs Java 17" if installed else "pip install -e '.[spark]'"
    assert "engine spark:" in output and missing in output and "Traceback" not in output
    assert not (mos_home / "dagster" / "storage").exists()  # no run was started


def test_check_available_names_the_missing_package(monkeypatch):
    import importlib.util

    from mos_pipelines.spark.session import SparkUnavailable, check_available

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    with pytest.raises(SparkUnavailable, match=r"pyspark 3\.5 is not installed: `pip install -e '\.\[spark\]'`"):
        check_available()


def _warehouse(home: Path, rows: list[tuple[int, float, str]], extra: bool = True) -> None:
    import duckdb

    home.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.execute("create table marts.spend (id integer, amount double, label varchar, loaded_at timestamp)")
    con.executemany("insert into marts.spend values (?, ?, ?, now())", rows)  # loaded_at: a run stamp, left out
    if extra:
        con.execute("create table marts.only_here as select 1 as id")
    con.close()


def test_spark_compare_against_another_home_reports_each_table(mos_home, tmp_path):
    """`mos spark compare --against`: every table of the two warehouses compared, numbers within 1e-9 relative,
    a table missing from this home and a number off by more named, exit code 1; equal warehouses exit 0."""
    other = tmp_path / "duckdb-home"
    _warehouse(other, [(1, 10.0, "a"), (2, 1 / 3, "b")])
    _warehouse(mos_home, [(2, 1 / 3 * (1 + 1e-12), "b"), (1, 10.0, "a")], extra=False)  # other order, within 1e-9
    result = runner.invoke(app, ["spark", "compare", "--against", str(other)])
    output = result.output.replace("\n", "")
    assert result.exit_code == 1, output
    assert "equal   marts.spend (2 rows)" in output
    assert "differs marts.only_here: missing from the Spark build's warehouse" in output

    (mos_home / "warehouse.duckdb").unlink()
    _warehouse(mos_home, [(1, 10.0 * (1 + 1e-6), "a"), (2, 1 / 3, "b")])
    result = runner.invoke(app, ["spark", "compare", "--against", str(other)])
    output = result.output.replace("\n", "")
    assert result.exit_code == 1 and "differs marts.spend" in output and "amount" in output
    assert "equal   marts.only_here (1 rows)" in output

    (mos_home / "warehouse.duckdb").unlink()
    _warehouse(mos_home, [(1, 10.0, "a"), (2, 1 / 3, "b")])
    result = runner.invoke(app, ["spark", "compare", "--against", str(other)])
    assert result.exit_code == 0, result.output
    assert "2 of 2 tables equal or skipped with a reason" in result.output


def test_spark_compare_against_a_home_without_a_warehouse_fails(mos_home, tmp_path):
    result = runner.invoke(app, ["spark", "compare", "--against", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "no warehouse at" in result.output.replace("\n", "")
