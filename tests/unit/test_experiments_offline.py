"""Offline policy evaluation on generated randomized logs, and its errors (file, row, field)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mos_pipelines.cli import app
from mos_pipelines.configuration import DOMAINS, ConfigError, load_experiments
from mos_pipelines.experiments.offline import LogError, evaluate_log, read_log

TRUE_RATES = {"A": 0.04, "B": 0.06, "C": 0.09, "H": 0.03}
runner = CliRunner()
BANDIT = load_experiments(DOMAINS["experiments"].file).bandit  # the bundled settings, whatever the environment says


def BanditSettings(**changes):  # noqa: N802 - the bundled bandit settings with some changed
    return BANDIT.model_copy(update=changes)


def _uniform_log(path: Path, rows: int = 40_000, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    arm = rng.choice(list(TRUE_RATES), rows)
    reward = (rng.random(rows) < np.array([TRUE_RATES[a] for a in arm])).astype(int)
    pd.DataFrame({"variant": arm, "converted": reward, "note": "x"}).to_csv(path, index=False)
    return path


def test_replay_recovers_true_rates_and_beats_uniform(tmp_path):
    log = read_log(_uniform_log(tmp_path / "log.csv"), "variant", "converted")
    result = evaluate_log(log, BanditSettings(), holdout_arm="H", batch_size=1000)
    assert result.method == "replay" and result.binary and result.arms == ["A", "B", "C"]
    for arm in result.arms:
        estimate = result.arm_estimates[arm]
        assert estimate.lower <= TRUE_RATES[arm] <= estimate.upper, arm
    assert result.holdout.lower <= TRUE_RATES["H"] <= result.holdout.upper
    assert result.best_arm == "C"
    assert result.policy.lower > result.uniform.upper  # the replayed bandit beats uniform allocation
    assert result.policy.mean > (TRUE_RATES["A"] + TRUE_RATES["B"] + TRUE_RATES["C"]) / 3
    assert result.final_shares["C"] > 0.9 and min(result.final_shares.values()) >= BanditSettings().floor - 1e-9
    assert result.lift_vs_holdout.lower > 0


def test_ips_with_logged_propensities_recovers_rates_and_beats_uniform(tmp_path):
    rng = np.random.default_rng(8)
    rows = 40_000
    arms, p = np.array(["A", "B", "C"]), np.array([0.6, 0.3, 0.1])  # a skewed logging policy
    arm = rng.choice(arms, rows, p=p)
    reward = (rng.random(rows) < np.array([TRUE_RATES[a] for a in arm])).astype(int)
    path = tmp_path / "skewed.csv"
    pd.DataFrame({"arm": arm, "reward": reward, "propensity": p[np.searchsorted(arms, arm)]}).to_csv(path, index=False)
    result = evaluate_log(read_log(path, "arm", "reward", "propensity"), BanditSettings(), batch_size=1000)
    assert result.method == "ips"
    for arm_id in ("A", "B", "C"):
        estimate = result.arm_estimates[arm_id]
        assert estimate.lower <= TRUE_RATES[arm_id] <= estimate.upper
    uniform_truth = (TRUE_RATES["A"] + TRUE_RATES["B"] + TRUE_RATES["C"]) / 3
    assert result.uniform.lower <= uniform_truth <= result.uniform.upper  # reweighted, not the skewed log mean
    assert result.policy.mean > result.uniform.upper


def test_revenue_rewards_use_the_value_bandit(tmp_path):
    rng = np.random.default_rng(2)
    rows = 20_000
    arm = rng.choice(["A", "B"], rows)
    converted = rng.random(rows) < np.where(arm == "A", 0.05, 0.05)
    value = np.where(arm == "A", 100.0, 300.0) * rng.gamma(2.0, 0.5, rows)  # B: same rate, bigger orders
    path = tmp_path / "revenue.csv"
    pd.DataFrame({"arm": arm, "revenue": np.where(converted, value.round(2), 0.0)}).to_csv(path, index=False)
    result = evaluate_log(read_log(path, "arm", "revenue"), BanditSettings(), batch_size=500)
    assert not result.binary and result.best_arm == "B"
    assert result.final_shares["B"] > 0.8 and result.policy.mean > result.uniform.mean


def test_same_log_same_result(tmp_path):
    log = read_log(_uniform_log(tmp_path / "log.csv", rows=5000), "variant", "converted")
    first = evaluate_log(log, BanditSettings(min_exposures=20), batch_size=200)
    again = evaluate_log(log, BanditSettings(min_exposures=20), batch_size=200)
    assert first.final_shares == again.final_shares and first.policy == again.policy


def test_missing_column_names_the_file_and_the_column(tmp_path):
    path = _uniform_log(tmp_path / "log.csv", rows=100)
    with pytest.raises(LogError) as error:
        read_log(path, "arm", "converted")
    assert str(path) in str(error.value) and "'arm' (--arm-column)" in str(error.value)
    assert "variant, converted, note" in str(error.value)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("arm,reward\nA,1\nB,yes\n", "row 2 (line 3): field 'reward' is 'yes', not a number"),
        ("arm,reward\nA,1\n,0\n", "row 2 (line 3): field 'arm' is empty"),
        ("arm,reward\nA,1\nB,-2\n", "row 2 (line 3): field 'reward' is -2.0; rewards must be >= 0"),
        ("arm,reward\nA,1\nB,0,9\n", "row 2 (line 3): has 3 fields, the header has 2"),
        ("arm,reward\nA,nan\n", "row 1 (line 2): field 'reward' is 'nan', not a finite number"),
        ("arm,reward\n", "has a header but no rows"),
        ("", "the file is empty"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(LogError) as error:
        read_log(path, "arm", "reward")
    assert str(path) in str(error.value) and needle in str(error.value)


def test_bad_propensity_and_unknown_holdout_are_reported(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("arm,reward,p\nA,1,0.5\nB,0,1.5\n")
    with pytest.raises(LogError, match=r"row 2 \(line 3\): field 'p' is 1.5; a propensity is a probability"):
        read_log(path, "arm", "reward", "p")
    log = read_log(_uniform_log(tmp_path / "log.csv", rows=200), "variant", "converted")
    with pytest.raises(LogError, match="--holdout-arm 'Z' does not occur"):
        evaluate_log(log, BanditSettings(), holdout_arm="Z")


def test_cli_evaluate_prints_policy_uniform_best_arm_and_allocation(tmp_path, monkeypatch):
    monkeypatch.setenv("MOS_HOME", str(tmp_path / "home"))
    path = _uniform_log(tmp_path / "log.csv", rows=20_000)
    result = runner.invoke(
        app,
        [
            "experiments",
            "evaluate",
            "--log",
            str(path),
            "--arm-column",
            "variant",
            "--reward-column",
            "converted",
            "--holdout-arm",
            "H",
            "--batch-size",
            "500",
        ],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    for text in ("Thompson bandit", "uniform random", "best single arm (C)", "holdout (H)", "Final allocation: A"):
        assert text in result.output
    bad = runner.invoke(
        app,
        ["experiments", "evaluate", "--log", str(path), "--arm-column", "arm", "--reward-column", "converted"],
        terminal_width=200,
    )
    assert bad.exit_code == 2 and "'arm' (--arm-column)" in bad.output


def test_cli_sample_size_and_compare(tmp_path, monkeypatch):
    monkeypatch.setenv("MOS_HOME", str(tmp_path / "home"))
    size = runner.invoke(app, ["experiments", "sample-size", "--baseline", "0.05", "--mde", "0.01"], terminal_width=200)
    assert size.exit_code == 0 and "8,1" in size.output  # ~8,150 per arm
    both = runner.invoke(
        app, ["experiments", "sample-size", "--baseline", "0.05", "--mde", "0.01", "--n-per-arm", "10"]
    )
    assert both.exit_code == 2 and "exactly one of" in both.output
    compare = runner.invoke(
        app,
        [
            "experiments",
            "compare",
            "--control-successes",
            "100",
            "--control-exposures",
            "2000",
            "--treatment-successes",
            "130",
            "--treatment-exposures",
            "2000",
        ],
        terminal_width=200,
    )
    assert compare.exit_code == 0 and "always-valid p-value" in compare.output and "+30.00%" in compare.output


def _override(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    [
        ({"bandit": {"floor": 0.7}}, "bandit.floor", "a number <= 0.5"),
        ({"bandit": {"flor": 0.1}}, "bandit.flor", "one of the keys segment, prior_alpha"),
        ({"goals": {"engagement": "opens"}}, "goals.engagement", "one of click, conversion, revenue"),
        (
            {"budget": {"channels": ["a", "b"], "floor": 0.1, "min_share": {"a": 0.95}, "max_share": {}}},
            "budget.min_share",
            "floor and min_share that add up to at most 1",
        ),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path, data, key, expected):
    with pytest.raises(ConfigError) as error:
        load_experiments(_override(tmp_path, data))
    assert (error.value.file, error.value.key) == (str(tmp_path / "exp.yaml"), key)
    assert error.value.expected.startswith(expected)


def test_a_conflict_with_the_bundled_file_points_at_the_bundled_line(tmp_path):
    """An override that changes the channels but not max_share: the bundled max_share names other channels."""
    with pytest.raises(ConfigError) as error:
        load_experiments(_override(tmp_path, {"budget": {"channels": ["a", "b"]}}))
    assert (error.value.file, error.value.key) == (str(DOMAINS["experiments"].file), "budget.max_share.paid_search")
    assert error.value.expected == "one of budget.channels (a, b)" and error.value.line is not None


def test_an_override_changes_only_what_it_sets(tmp_path):
    config = load_experiments(_override(tmp_path, {"experiments": {"em_x": {"goal": "revenue", "holdout_share": 0.2}}}))
    assert config.goal_for("em_x", "engagement") == "revenue" and config.holdout_share_for("em_x") == 0.2
    assert config.goal_for("em_y", "conversion") == "conversion" and config.holdout_share_for("em_y") == 0.1
