"""The one configuration model: one loader and one error shape (file, key, expected, got, line), an override file
merged over the bundled one, where every value came from (`mos config show`), checking a file (`mos config
validate`), and values declared once that reach both Python and dbt (`--vars`, seen in dbt's compiled SQL)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mos_pipelines.cli import app
from mos_pipelines.configuration import (
    DOMAINS,
    ConfigError,
    load_activation,
    load_experiments,
    load_insights,
    load_quality,
    load_transform,
    provenance,
)
from mos_pipelines.configuration.dbt import dbt_vars, vars_json
from mos_pipelines.quality import gates
from mos_pipelines.settings import DBT_PROJECT_DIR
from mos_pipelines.transform.project import dbt_command, dbt_executable

runner = CliRunner()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def bundled_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from the bundled files, whatever overrides the environment names."""
    for domain in DOMAINS.values():
        monkeypatch.delenv(domain.env, raising=False)


# -- one loader, one error -------------------------------------------------------------------------------------


def test_a_wrong_type_names_the_file_the_key_its_line_what_was_expected_and_what_was_found(tmp_path):
    path = write(
        tmp_path / "activation.yaml",
        "retry:\n  max_attempts: 3\ndestinations:\n  email__nurture:\n    channel: carrier_pigeon\n"
        "    sync_model: activation.sync_email__nurture\n    record_key: customer_id\n",
    )
    with pytest.raises(ConfigError) as error:
        load_activation(path)
    e = error.value
    assert (e.file, e.key, e.line, e.got) == (str(path), "destinations.email__nurture.channel", 5, "carrier_pigeon")
    assert e.expected == "one of email, webhook, google_customer_match, meta_custom_audience, slack"
    assert str(e) == (
        f"{path}: destinations.email__nurture.channel (line 5): expected one of email, webhook, "
        "google_customer_match, meta_custom_audience, slack; got 'carrier_pigeon'"
    )


def test_an_unknown_key_lists_the_keys_that_exist(tmp_path):
    path = write(tmp_path / "insights.yaml", "anomaly:\n  baseline_weks: 3\n")
    with pytest.raises(ConfigError) as error:
        load_insights(path)
    e = error.value
    assert (e.key, e.line) == ("anomaly.baseline_weks", 2)
    assert e.expected == "one of the keys enabled, metrics, by_channel, baseline_weeks, min_baseline_weeks"
    assert str(e).endswith("got the unknown key 'baseline_weks'")


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_quality(tmp_path / "absent.yaml")
    e = error.value
    assert (e.file, e.key, e.expected) == (str(tmp_path / "absent.yaml"), "", "a readable YAML file")
    assert "No such file" in str(e)


def test_a_yaml_syntax_error_gives_its_line(tmp_path):
    path = write(tmp_path / "quality.yaml", "duplicate_customers:\n  max_rate: 0.02\n  min_customers: [1, 2\n")
    with pytest.raises(ConfigError) as error:
        load_quality(path)
    e = error.value
    assert (e.file, e.key, e.expected, e.line) == (str(path), "", "valid YAML", 4)
    assert f"{path}: (top level) (line 4): expected valid YAML; got" in str(e)


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    path = write(tmp_path / "experiments.yaml", "bandit: {floor: 0.9, draws: ten}\nstats: {alpha: 0}\n")
    with pytest.raises(ConfigError) as error:
        load_experiments(path)
    assert {(p.key, p.expected) for p in error.value.problems} == {
        ("bandit.floor", "a number <= 0.5"),
        ("bandit.draws", "a whole number"),
        ("stats.alpha", "a number > 0"),
    }
    assert len(str(error.value).splitlines()) == 3


def test_a_domain_error_type_is_the_one_error():
    from mos_pipelines.simulation import ScenarioError

    assert issubclass(ScenarioError, ConfigError) and issubclass(ConfigError, ValueError)


# -- override files --------------------------------------------------------------------------------------------


def test_an_override_file_sets_only_what_it_names_and_replaces_collections_whole(tmp_path):
    path = write(
        tmp_path / "a.yaml",
        "retry: {max_attempts: 2}\n"
        "destinations:\n  only:\n    channel: email\n    sync_model: activation.sync_email__nurture\n"
        "    record_key: customer_id\n",
    )
    config = load_activation(path)
    bundled = load_activation(DOMAINS["activation"].file)
    assert config.retry.max_attempts == 2 and config.retry.jitter == bundled.retry.jitter  # merged key by key
    assert list(config.destinations) == ["only"]  # named entries: replaced whole
    assert config.destination("only").consent_purpose == "email_marketing"  # from the bundled sync model
    assert config.files == (DOMAINS["activation"].file, path)


def test_the_override_variable_is_read_at_load_time(tmp_path, monkeypatch):
    monkeypatch.setenv("MOS_QUALITY_CONFIG", str(write(tmp_path / "q.yaml", "ad_spend: {min_spend: -5}\n")))
    assert load_quality().ad_spend.min_spend == -5
    monkeypatch.delenv("MOS_QUALITY_CONFIG")
    assert load_quality().ad_spend.min_spend == 0


def test_an_unknown_destination_is_a_config_error_naming_the_known_ones():
    with pytest.raises(ConfigError) as error:
        load_activation().destination("fax")
    assert error.value.key == "destinations" and "email__nurture" in error.value.expected


# -- where each value came from --------------------------------------------------------------------------------


def test_provenance_names_the_file_line_and_key_or_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("MOS_ACTIVATION_CONFIG", str(write(tmp_path / "a.yaml", "retry: {max_attempts: 2}\n")))
    sources = {key: (value, source) for key, value, source in provenance("activation")}
    assert sources["retry.max_attempts"] == (2, f"$MOS_ACTIVATION_CONFIG ({tmp_path / 'a.yaml'}):1 retry.max_attempts")
    value, source = sources["retry.jitter"]
    assert value == 0.5 and source.startswith("config/activation.yaml:") and source.endswith(" retry.jitter")
    assert sources["destinations.email__nurture.timeout_seconds"] == (10.0, "default")  # not in any file


def test_config_show_prints_each_value_with_its_source(tmp_path, monkeypatch):
    monkeypatch.setenv("MOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MOS_QUALITY_CONFIG", str(write(tmp_path / "q.yaml", "duplicate_customers: {max_rate: 0.07}\n")))
    shown = runner.invoke(app, ["config", "show", "--domain", "dbt"], terminal_width=300)
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if x.startswith("mos__identity_max_duplicate_rate"))
    assert (
        line == f"mos__identity_max_duplicate_rate = 0.07    <- $MOS_QUALITY_CONFIG ({tmp_path / 'q.yaml'}):1 "
        "duplicate_customers.max_rate"
    )
    as_json = json.loads(runner.invoke(app, ["config", "show", "--json"]).output)
    assert set(as_json) == {*DOMAINS, "dbt", "environment"}
    assert as_json["transform"]["mos__session_timeout_minutes"]["value"] == 30
    assert as_json["environment"]["MOS_QUALITY_CONFIG"]["value"] == str(tmp_path / "q.yaml")


def test_config_show_never_prints_a_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("MOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MOS_SMTP_PASSWORD", "hunter2")
    shown = runner.invoke(app, ["config", "show", "--domain", "environment"], terminal_width=300)
    assert "MOS_SMTP_PASSWORD = (set)" in shown.output and "hunter2" not in shown.output


# -- checking a file before it is used -------------------------------------------------------------------------


def test_config_validate_checks_a_file_by_its_name_and_exits_2_with_every_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("MOS_HOME", str(tmp_path / "home"))
    bad = write(tmp_path / "lookalike.yaml", "model: {kind: forest}\naudiences:\n  - {name: A b, seed: x}\n")
    result = runner.invoke(app, ["config", "validate", str(bad)], terminal_width=300)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    assert f"error: {bad}: model.kind (line 1): expected one of gradient_boosting, linear; got 'forest'" in errors
    good = write(tmp_path / "experiments.yaml", "stats: {alpha: 0.01}\n")
    assert runner.invoke(app, ["config", "validate", str(good)]).exit_code == 0
    unnamed = write(tmp_path / "mine.yaml", "stats: {alpha: 0.01}\n")
    assert runner.invoke(app, ["config", "validate", str(unnamed)]).exit_code == 2
    assert runner.invoke(app, ["config", "validate", str(unnamed), "--domain", "experiments"]).exit_code == 0


def test_config_validate_without_a_file_checks_what_would_be_read_now(tmp_path, monkeypatch):
    monkeypatch.setenv("MOS_HOME", str(tmp_path / "home"))
    ok = runner.invoke(app, ["config", "validate"], terminal_width=300)
    assert ok.exit_code == 0 and {f"ok  {d}" for d in DOMAINS} <= {
        line[: 4 + len(line.split()[1])] for line in ok.output.splitlines()
    }
    monkeypatch.setenv("MOS_TRANSFORM_CONFIG", str(write(tmp_path / "t.yaml", "mos__session_timeout_minutes: 0\n")))
    broken = runner.invoke(app, ["config", "validate"], terminal_width=300)
    assert (
        broken.exit_code == 2
        and "mos__session_timeout_minutes (line 1): expected a number >= 1; got 0" in broken.output
    )


# -- declared once, handed to both Python and dbt --------------------------------------------------------------


def test_every_var_the_dbt_project_reads_is_handed_to_it():
    """Each `var('mos__…')` in the project is in --vars, and the project itself declares none (no defaults)."""
    import re

    used = set()
    for path in DBT_PROJECT_DIR.rglob("*"):
        if path.suffix in (".sql", ".yml", ".py") and "target" not in path.parts:
            used |= set(re.findall(r"var\(\s*['\"](mos__\w+)['\"]\s*\)", path.read_text()))
            assert not re.findall(r"var\(\s*['\"]mos__\w+['\"]\s*,", path.read_text()), f"a default in {path}"
    assert used and used <= set(dbt_vars())
    assert "vars" not in yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())


def test_a_broken_activation_config_still_gives_dbt_every_var_the_rest_of_the_project_reads(tmp_path, monkeypatch):
    broken = tmp_path / "activation.yaml"
    broken.write_text("destinations: {email__nurture: {channel: carrier_pigeon}}\n")
    monkeypatch.setenv("MOS_ACTIVATION_CONFIG", str(broken))
    with pytest.raises(ConfigError, match="carrier_pigeon"):
        dbt_vars()
    lenient = dbt_vars(lenient=True)
    assert set(lenient) == set(json.loads(vars_json(lenient=True)))
    assert lenient["mos__activation_sync_models"]["sync_email__nurture"] == {}  # a placeholder: not built
    assert lenient["mos__identity_max_duplicate_rate"] == 0.02 and lenient["mos__session_timeout_minutes"] == 30


def test_a_passthrough_dbt_command_carries_the_vars_and_merges_the_callers():
    command = dbt_command(["build", "--select", "fct_sessions", "--vars", "{mos__session_timeout_minutes: 45}"])
    assert command[:4] == [dbt_executable(), "build", "--select", "fct_sessions"]
    assert command[command.index("--project-dir") + 1] == str(DBT_PROJECT_DIR)
    handed = json.loads(command[command.index("--vars") + 1])
    assert handed["mos__session_timeout_minutes"] == 45 and handed == {**dbt_vars(), "mos__session_timeout_minutes": 45}
    assert command.count("--vars") == 1


def test_values_declared_once_reach_python_and_dbt(tmp_path, monkeypatch):
    """Change the duplicate-customer rate and a consent purpose in override files named by the environment: the
    quality gate and the delivery read them, and dbt compiles them into its test and sync model."""
    monkeypatch.setenv("MOS_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    monkeypatch.setenv(
        "MOS_QUALITY_CONFIG",
        str(write(tmp_path / "q.yaml", "duplicate_customers: {max_rate: 0.0731, min_customers: 417}\n")),
    )
    monkeypatch.setenv(
        "MOS_ACTIVATION_CONFIG",
        str(
            write(
                tmp_path / "a.yaml",
                "sync_models:\n  sync_ads__audience_members:\n    consent_purpose: analytics_test\n",
            )
        ),
    )
    monkeypatch.setenv(
        "MOS_EXPERIMENTS_CONFIG", str(write(tmp_path / "e.yaml", "assignment: {holdout_share: 0.123}\n"))
    )
    # Python: the gate's threshold, the delivery's send-time purpose, the consent gate's target
    assert gates.gates_for(load_quality())["duplicate_customers"] == {"max_rate": 0.0731, "min_customers": 417}
    activation = load_activation()
    assert activation.destination("google_ads__audiences").consent_purpose == "analytics_test"
    assert ("activation.sync_ads__audience_members", "analytics_test") in activation.consent_targets()
    # dbt: the vars of every invocation, compiled into the test and the sync models
    target = tmp_path / "target"
    command = dbt_command(
        [
            "compile",
            "--quiet",
            "--target-path",
            str(target),
            "--log-path",
            str(tmp_path / "logs"),
            "--select",
            "assert_identity_duplicate_customer_rate sync_ads__audience_members sync_email__nurture",
        ]
    )
    proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    compiled = {p.stem: p.read_text() for p in (target / "compiled").rglob("*.sql")}
    rate_test = compiled["assert_identity_duplicate_customer_rate"]
    assert "> 0.0731 * customers" in rate_test and "customers >= 417" in rate_test
    assert "consent.purpose = 'analytics_test'" in compiled["sync_ads__audience_members"]
    assert "0.123" in compiled["sync_email__nurture"]  # the campaign's holdout share, from config/experiments.yaml


def test_the_bundled_configuration_hands_dbt_the_values_it_used_to_declare():
    """The vars as dbt_project.yml held them before they moved (sync models now one var per model name)."""
    values = dbt_vars()
    assert values["mos__identity_max_duplicate_rate"] == load_quality().duplicate_customers.max_rate == 0.02
    assert values["mos__marketing_variant_conversion_window_days"] == load_experiments().bandit.conversion_window_days
    assert values["mos__session_timeout_minutes"] == load_transform().mos__session_timeout_minutes == 30
    assert values["mos__activation_sync_models"]["sync_email__nurture"] == {
        "consent_purpose": "email_marketing",
        "campaign_id": "em_trial_nurture",
        "lifecycle_stages": ["subscriber", "lead", "mql"],
        "holdout_share": 0.1,
    }
    assert values["mos__survivorship"]["email"] == {"rule": "most_recent"}
    assert values["mos__customers_as_of"] is None


def test_a_key_set_twice_in_one_file_is_an_error_not_a_silent_last_value(tmp_path):
    path = write(tmp_path / "quality.yaml", "duplicate_customers:\n  max_rate: 0.02\n  max_rate: 0.5\n")
    with pytest.raises(ConfigError) as error:
        load_quality(path)
    assert (error.value.key, error.value.line, error.value.expected) == (
        "duplicate_customers.max_rate",
        2,
        "each key once in its mapping",
    )
    assert str(error.value).endswith("got it again at line 3")


def test_a_reader_without_a_name_is_named_by_its_id(tmp_path):
    config = load_insights(
        write(tmp_path / "insights.yaml", "readers:\n  - {id: analyst, objectives: [acquisition], daily_cap: 3}\n")
    )
    (reader,) = config.readers
    assert (reader.reader_id, reader.name, reader.daily_cap, reader.channels) == ("analyst", "analyst", 3, ())


def test_duckdb_settings_come_from_one_file_for_python_and_dbt(tmp_path, monkeypatch):
    """config/warehouse.yaml sets threads, memory limit and spill folder: a Python connection has them, and so has
    dbt's own connection (the profile reads the MOS_DUCKDB_* variables mos exports from the same file)."""
    from mos_pipelines import warehouse
    from mos_pipelines.settings import Settings, export_environment

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MOS_HOME", str(home))
    path = home / "warehouse.duckdb"
    bundled = warehouse.duckdb_settings(path)
    assert bundled["memory_limit"] == "4GB" and bundled["temp_directory"] == f"{path}.tmp"
    assert int(bundled["threads"]) >= 1
    monkeypatch.setenv(
        "MOS_WAREHOUSE_CONFIG",
        str(write(tmp_path / "w.yaml", "duckdb: {threads: 1, memory_limit: 1GB, temp_directory: spill}\n")),
    )
    with warehouse.connect(path) as con:
        threads, memory, temp = con.execute(
            "select current_setting('threads'), current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
    assert (threads, temp) == (1, str(home / "spill")) and memory.startswith("953.6")  # 1 GB in MiB
    for key in ("THREADS", "MEMORY_LIMIT", "TEMP_DIRECTORY"):
        monkeypatch.setenv(f"MOS_DUCKDB_{key}", "")  # recorded, so the values exported below are undone
    export_environment(Settings(mos_home=home))
    command = dbt_command(
        [
            "show",
            "--quiet",
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
            "--output",
            "json",
            "--inline",
            "select current_setting('threads') as t, current_setting('memory_limit') as m,"
            " current_setting('temp_directory') as d",
        ]
    )
    proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    (row,) = json.loads(proc.stdout[proc.stdout.index("{") :])["show"]
    assert (row["t"], row["m"][:5], row["d"]) == (1, "953.6", str(home / "spill"))


def test_a_memory_limit_that_is_not_a_size_is_a_config_error(tmp_path, monkeypatch):
    from mos_pipelines.configuration import load_warehouse

    with pytest.raises(ConfigError) as caught:
        load_warehouse(write(tmp_path / "w.yaml", "duckdb: {memory_limit: lots}\n"))
    assert "duckdb.memory_limit" in str(caught.value) and "6GB" in str(caught.value)


def test_settings_apply_again_after_the_spill_folder_was_used(tmp_path):
    """A query that spills uses the temp folder; opening the warehouse again in the same process (the same DuckDB
    instance) must not try to switch it, which DuckDB refuses even to the same folder."""
    from mos_pipelines import warehouse

    path = tmp_path / "w.duckdb"
    with warehouse.connect(path) as con:
        con.execute("set memory_limit = '64MB'; set preserve_insertion_order = false")
        con.execute("create table t as select range as i, hash(range) as h from range(3000000)")
        con.execute("create table s as select * from t order by h")  # an external sort: spills
        with warehouse.connect(path) as again:  # the same instance: applies the settings again
            assert again.execute("select count(*) from s").fetchone() == (3_000_000,)


def test_engine_settings_are_read_once_and_again_when_their_file_changes(tmp_path, monkeypatch):
    """Every connection asks for the engine settings (the web app connects per request): they are cached per state
    of their files, so an edit of the override file is seen by the next connection."""
    import os

    from mos_pipelines import warehouse

    override = write(tmp_path / "w.yaml", "duckdb: {threads: 1}\n")
    monkeypatch.setenv("MOS_WAREHOUSE_CONFIG", str(override))
    path = tmp_path / "warehouse.duckdb"
    assert warehouse.duckdb_settings(path)["threads"] == "1"
    override.write_text("duckdb: {threads: 3}\n")
    os.utime(override, ns=(override.stat().st_atime_ns, override.stat().st_mtime_ns + 1_000_000))
    assert warehouse.duckdb_settings(path)["threads"] == "3"


def test_the_engine_comes_from_the_environment_else_the_file(tmp_path: Path, monkeypatch):
    """`mos run --engine` sets MOS_ENGINE, which wins; else config/warehouse.yaml's engine (duckdb by default); an
    unknown engine is an error naming the variable and the choices, and the file's value is validated."""
    from mos_pipelines import warehouse
    from mos_pipelines.configuration import ConfigError

    monkeypatch.delenv("MOS_ENGINE", raising=False)
    assert warehouse.engine() == "duckdb"
    override = tmp_path / "w.yaml"
    override.write_text("engine: spark\n")
    monkeypatch.setenv("MOS_WAREHOUSE_CONFIG", str(override))
    assert warehouse.engine() == "spark"
    monkeypatch.setenv("MOS_ENGINE", "duckdb")
    assert warehouse.engine() == "duckdb"
    monkeypatch.setenv("MOS_ENGINE", "oracle")
    with pytest.raises(warehouse.WarehouseError, match="MOS_ENGINE='oracle'.*duckdb, spark"):
        warehouse.engine()
    monkeypatch.delenv("MOS_ENGINE")
    override.write_text("engine: postgres\n")
    with pytest.raises(ConfigError, match="engine"):
        warehouse.engine()
