"""The world's respond(sends) and the stepped world the closed loop drives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mos_pipelines.configuration import load_experiments as load_config
from mos_pipelines.experiments.outcomes import email_match_key_sql
from mos_pipelines.simulation import WorldConfig
from mos_pipelines.simulation.respond import SendsError
from mos_pipelines.simulation.scenario import DEFAULT_SCENARIO
from mos_pipelines.simulation.world import SteppedWorld

B_WINS = DEFAULT_SCENARIO.parent / "experiment_b_wins.yaml"


def _world(tmp_path, people: int = 3000, days: int = 3, scenario=B_WINS) -> SteppedWorld:
    return SteppedWorld(WorldConfig(seed=5, people=people, days=days, scenario=scenario), tmp_path / "home")


def test_outcomes_follow_the_true_arm_rates(tmp_path):
    world = _world(tmp_path)
    try:
        audience = world.audience(0)
        rng = np.random.default_rng(0)
        sends = audience.assign(variant_id=rng.choice(["A", "B", "holdout"], len(audience)))
        outcome = world.step(0, sends)
    finally:
        world.finish()
    assert len(outcome) == len(sends)
    holdout = outcome[outcome["is_holdout"]]
    assert len(holdout) > 0 and not holdout[["sent", "delivered", "opened", "clicked"]].any().any()
    rates = outcome[~outcome["is_holdout"]].groupby("variant_id")["clicked"].mean()
    assert rates["B"] > 1.3 * rates["A"]  # B's click multiplier is 1.8 in this scenario
    emails = pd.read_csv(world.landing_dir / "email" / "email_events_2026-01-01.csv", on_bad_lines="skip")
    sent = set(emails.loc[emails["event"] == "sent", "recipient_email"])
    assert not sent & set(holdout["recipient_email"])  # no email event for a holdout member


def test_same_sends_in_any_order_give_the_same_outcomes(tmp_path):
    outcomes = []
    for k, shuffle in enumerate((False, True)):
        world = _world(tmp_path / str(k), people=800, days=1)
        try:
            audience = world.audience(0)
            sends = audience.assign(variant_id=np.where(np.arange(len(audience)) % 2 == 0, "A", "C"))
            if shuffle:
                sends = sends.sample(frac=1, random_state=4)
            outcomes.append(world.step(0, sends).sort_values("recipient_email").reset_index(drop=True))
        finally:
            world.finish()
    pd.testing.assert_frame_equal(outcomes[0], outcomes[1])


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"recipient_email": "nobody@nowhere.example"}, "field recipient_email: 'nobody@nowhere.example' is no person"),
        ({"variant_id": "Z"}, "field variant_id: 'Z' is not a variant of em_subject_test"),
        ({"campaign_id": "em_unknown"}, "field campaign_id: 'em_unknown' is not an email campaign"),
    ],
)
def test_invalid_sends_name_the_row_and_field(tmp_path, change, needle):
    world = _world(tmp_path, people=300, days=1)
    try:
        sends = world.audience(0).assign(variant_id="A").head(5).reset_index(drop=True)
        for column, value in change.items():
            sends.loc[3, column] = value
        with pytest.raises(SendsError, match="row 3") as error:
            world.step(0, sends)
        assert needle in str(error.value)
    finally:
        world.finish()


def test_days_are_stepped_in_order_and_truth_is_written(tmp_path):
    world = _world(tmp_path, people=300, days=2)
    try:
        with pytest.raises(ValueError, match="expected day 0"):
            world.step(1, world.audience(1).assign(variant_id="A"))
        world.step(0, world.audience(0).assign(variant_id="A"))
    finally:
        written = world.finish()
    assert "arm_rates.csv" in written
    truth = pd.read_parquet(tmp_path / "home" / "truth" / "email_sends.parquet")
    assert set(truth["variant_id"]) == {"A"}


def test_match_key_sql_follows_the_dbt_macro():
    import duckdb

    cases = {
        "J.Doe+news@GoogleMail.com ": "jdoe@gmail.com",
        "Ana.Lopez@Acme.io": "ana.lopez@acme.io",
        "not an email": None,
        "a@b@c.com": None,
        "+tag@x.com": None,
        "": None,
    }
    con = duckdb.connect()
    for text, expected in cases.items():
        found = con.execute(f"select {email_match_key_sql('x')} from (select ? as x)", [text]).fetchall()[0][0]
        assert found == expected, text


def test_bundled_experiments_config_loads(monkeypatch):
    monkeypatch.delenv("MOS_EXPERIMENTS_CONFIG", raising=False)
    config = load_config()
    assert config.assignment.holdout_share == 0.10 and config.bandit.floor > 0
    assert config.goal_for("em_newsletter", "engagement") == "click"
