"""Policy config (validation, version hash, `mos policy`) and ICP scoring on a small
DuckDB file built here."""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from mos_pipelines.cli import app
from mos_pipelines.configuration import DOMAINS, ConfigError, load_policy
from mos_pipelines.policy import icp, tables

NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.UTC)
AS_OF = datetime.datetime(2026, 3, 1, 0, 0)


@pytest.fixture(autouse=True)
def bundled_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DOMAINS["policy"].env, raising=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- configuration -------------------------------------------------------------------------------------------------

NO_CATCH_ALL = """
routing:
  rules:
    - name: owned_account
      when: {owned: true}
      to: owner
    - name: emea_bdr
      when: {region: [EU, UK]}
      to: bdr_emea
"""


def test_a_routing_policy_without_a_catch_all_is_refused_with_file_key_and_line(tmp_path: Path):
    path = write(tmp_path / "policy.yaml", NO_CATCH_ALL)
    with pytest.raises(ConfigError) as error:
        load_policy(path)
    e = error.value
    assert (e.file, e.key, e.line) == (str(path), "routing.rules[1].when", 8)
    assert "catch-all" in e.expected
    result = CliRunner().invoke(app, ["policy", "validate", str(path)])
    assert result.exit_code == 2
    assert "routing.rules[1].when (line 8): expected a last rule without `when`" in result.output


@pytest.mark.parametrize(
    ("rules", "key", "expected"),
    [
        (
            "    - {name: everyone, to: bdr_global}\n    - {name: emea, when: {region: [EU]}, to: bdr_emea}\n",
            "routing.rules[0].when",
            "only the last rule may be the catch-all",
        ),
        ("    - {name: everyone, to: nobody}\n", "routing.rules[0].to", "`owner` or one of the teams"),
        (
            "    - {name: everyone, when: {region: [EU]}, to: owner}\n    - {name: rest, to: bdr_global}\n",
            "routing.rules[0].when",
            "`owned: true`",
        ),
        (
            "    - {name: everyone, when: {colour: [red]}, to: bdr_emea}\n    - {name: rest, to: bdr_global}\n",
            "routing.rules[0].when.colour",
            "one of the keys tier, segment",
        ),
    ],
)
def test_routing_rule_errors_name_the_key(tmp_path: Path, rules: str, key: str, expected: str):
    path = write(tmp_path / "policy.yaml", "routing:\n  rules:\n" + rules)
    with pytest.raises(ConfigError) as error:
        load_policy(path)
    assert (error.value.file, error.value.key) == (str(path), key)
    assert expected in error.value.expected


def test_other_policy_errors_name_the_key(tmp_path: Path):
    path = write(
        tmp_path / "policy.yaml",
        "icp:\n  fit_rules:\n    - {name: size, column: account_contact_count, weight: 10, in: [1], min: 2}\n"
        "contact:\n  quiet_hours: {start: '25:00', end: '08:00'}\n  time_zones: {default: Mars/Olympus}\n",
    )
    with pytest.raises(ConfigError) as error:
        load_policy(path)
    found = {p.key: p.expected for p in error.value.problems}
    assert "either `in`" in found["icp.fit_rules[0]"]
    assert "HH:MM" in found["contact.quiet_hours.start"]
    assert "IANA time zone" in found["contact.time_zones.default"]


def test_the_version_hashes_the_normalised_content_not_the_layout(tmp_path: Path):
    bundled = load_policy()
    # the same values, written differently (flow style, a comment), in an override: same version
    same = write(tmp_path / "same.yaml", "# nothing changes\ncontact: {quiet_hours: {start: '20:00', end: '08:00'}}\n")
    assert load_policy(same).version() == bundled.version()
    changed = write(tmp_path / "changed.yaml", "contact:\n  quiet_hours: {start: '21:00', end: '08:00'}\n")
    assert load_policy(changed).version() != bundled.version()
    assert len(bundled.version()) == 12


def test_the_override_variable_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path / "mine.yaml", "icp:\n  engagement: {half_life_days: 30}\n")
    monkeypatch.setenv(DOMAINS["policy"].env, str(path))
    settings = load_policy()
    assert settings.icp.engagement.half_life_days == 30
    assert settings.files[-1] == path


def test_policy_show_prints_the_version_and_the_rules():
    result = CliRunner().invoke(app, ["policy", "show"])
    assert result.exit_code == 0, result.output
    version = load_policy().version()
    assert f"policy version {version}" in result.output
    assert "catch_all" in result.output and "(catch-all) -> bdr_global" in result.output
    assert "target_industry" in result.output
    as_json = CliRunner().invoke(app, ["policy", "show", "--json"])
    assert '"policy_version": "' + version + '"' in as_json.output


# -- ICP -----------------------------------------------------------------------------------------------------------


def icp_db(features: pd.DataFrame, touchpoints: pd.DataFrame | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema marts")
    con.register("_f", features)
    con.execute("create table marts.dim_customer_features as select * from _f")
    con.unregister("_f")
    if touchpoints is not None:
        con.register("_t", touchpoints)
        con.execute("create table marts.fct_touchpoints as select * from _t")
        con.unregister("_t")
    return con


ICP_ONLY = """
icp:
  fit_rules:
    - {name: saas, column: industry, in: [saas], weight: 50}
    - {name: big, column: account_contact_count, min: 3, weight: 30}
    - {name: exec, column: seniority, in: [c_level], weight: 20}
  engagement:
    half_life_days: 10
    lookback_days: 90
    signals:
      - {name: sessions, relation: marts.fct_touchpoints, where: "touch_type = 'session'", time_column: touched_at, weight: 1}
      - {name: clicks, relation: marts.fct_touchpoints, where: "touch_type = 'email_click'", time_column: touched_at, weight: 4}
  tiers:
    fit: {high: 70, medium: 40}
    engagement: {high: 4, medium: 1}
    matrix: {high: [A, A, B], medium: [B, C, C], low: [C, D, D]}
"""


def features() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4"],
            "account_key": ["a1", "a1", "a2", None],
            "industry": ["saas", "saas", "retail", None],
            "account_contact_count": [5, 5, 1, None],
            "seniority": ["c_level", "manager", "c_level", None],
            "as_of_at": [AS_OF] * 4,
        }
    )


def touchpoints() -> pd.DataFrame:
    day = datetime.timedelta(days=1)
    rows = [
        ("c1", "email_click", AS_OF),  # 4 points, no decay
        ("c1", "session", AS_OF - 10 * day),  # one half-life: 0.5
        ("c2", "session", AS_OF - 20 * day),  # two half-lives: 0.25
        ("c2", "session", AS_OF - 100 * day),  # beyond the lookback: nothing
        ("c3", "session", AS_OF + day),  # after the as-of time: nothing
        (None, "session", AS_OF),  # no customer: nothing
    ]
    return pd.DataFrame(rows, columns=["customer_id", "touch_type", "touched_at"])


def test_icp_tiers_come_from_the_rules_that_fired_and_the_decayed_engagement(tmp_path: Path):
    settings = load_policy(write(tmp_path / "policy.yaml", ICP_ONLY))
    con = icp_db(features(), touchpoints())
    result = icp.score(con, settings.icp, "v1", NOW)
    scores = result.scores.set_index("customer_id")
    assert not result.skipped
    assert list(scores.loc["c1", "fit_rules_fired"]) == ["saas", "big", "exec"]
    assert list(scores.loc["c2", "fit_rules_fired"]) == ["saas", "big"]
    assert list(scores.loc["c3", "fit_rules_fired"]) == ["exec"]
    assert list(scores.loc["c4", "fit_rules_fired"]) == []  # nulls never fire
    assert scores["fit_score"].to_dict() == pytest.approx({"c1": 100.0, "c2": 80.0, "c3": 20.0, "c4": 0.0})
    assert scores["engagement_score"].to_dict() == pytest.approx({"c1": 4.5, "c2": 0.25, "c3": 0.0, "c4": 0.0})
    assert scores.loc["c1", "engagement_terms"] == "clicks=4.00; sessions=0.50"
    # fit high × engagement high -> A; fit high × low -> B; fit low × low -> D
    assert scores["tier"].to_dict() == {"c1": "A", "c2": "B", "c3": "D", "c4": "D"}
    assert set(scores["policy_version"]) == {"v1"}
    icp.write(con, result)
    tables.ensure_tables(con)
    assert con.execute(
        "select count(*) from policy.icp_scores where list_contains(fit_rules_fired, 'exec')"
    ).fetchone() == (2,)


def test_a_rule_on_a_missing_column_is_skipped_with_its_reason_and_the_rest_are_scored(tmp_path: Path):
    settings = load_policy(write(tmp_path / "policy.yaml", ICP_ONLY))
    con = icp_db(features().drop(columns=["seniority"]))  # no seniority column, no touchpoints table
    result = icp.score(con, settings.icp, "v1", NOW)
    reasons = {s.part: s.reason for s in result.skipped}
    assert "column 'seniority' is not in marts.dim_customer_features" in reasons["fit_rule:exec"]
    assert "marts.fct_touchpoints does not exist" in reasons["signal:sessions"]
    assert result.evaluated_rules == ["saas", "big"]
    scores = result.scores.set_index("customer_id")
    # the fit is over the rules evaluated: saas (50) + big (30) of 80
    assert scores["fit_score"].to_dict() == pytest.approx({"c1": 100.0, "c2": 100.0, "c3": 0.0, "c4": 0.0})
    assert list(scores.loc["c1", "fit_rules_evaluated"]) == ["saas", "big"]
    assert (scores["engagement_score"] == 0).all()


def test_a_rule_whose_values_do_not_compare_with_the_column_is_skipped(tmp_path: Path):
    body = ICP_ONLY.replace(
        "{name: big, column: account_contact_count, min: 3, weight: 30}",
        "{name: big, column: account_contact_count, in: [large], weight: 30}",
    )
    settings = load_policy(write(tmp_path / "policy.yaml", body))
    result = icp.score(icp_db(features(), touchpoints()), settings.icp, "v1", NOW)
    assert [s.part for s in result.skipped] == ["fit_rule:big"]
    assert result.evaluated_rules == ["saas", "exec"]


def test_the_version_is_recorded_once_with_its_content(tmp_path: Path):
    settings = load_policy()
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert tables.record_version(con, settings, NOW) == settings.version()
    tables.record_version(con, settings, NOW)
    rows = con.execute("select policy_version, content->>'$.routing.rules[0].name' from policy.versions").fetchall()
    assert rows == [(settings.version(), "owned_account")]
