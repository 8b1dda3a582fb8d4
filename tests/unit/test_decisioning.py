"""The next best action: arbitration under the contact policy, its explanations, the holdout, the learning, and the
closed loop's contact ledger (no person above the caps or in quiet hours)."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest

from mos_pipelines.configuration import DOMAINS, load_policy, load_transform
from mos_pipelines.decisioning import engine, learning, store
from mos_pipelines.policy import contact
from mos_pipelines.simulation.decisioning_loop import SCENARIOS, run_loop
from tests.unit.test_policy_change import NOW, build

DAY = datetime.date(2026, 3, 2)
AT = datetime.datetime(2026, 3, 2, 6, 0)
STAGES = ["visitor", "subscriber", "lead", "mql", "sql", "opportunity", "customer", "churn_risk"]
ZONES = ["America/New_York", "Europe/Berlin", "Australia/Sydney", "UTC"]


@pytest.fixture(autouse=True)
def bundled_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DOMAINS["policy"].env, raising=False)


def people(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    consents = [
        {"email_marketing", "ad_personalization"},
        {"email_marketing"},
        {"ad_personalization"},
        set(),
    ]
    return pd.DataFrame(
        {
            "customer_id": [f"p{i:04d}" for i in range(n)],
            "time_zone": rng.choice(ZONES, n),
            "time_zone_source": "given",
            "lifecycle_stage": rng.choice(STAGES, n, p=[0.1, 0.25, 0.25, 0.1, 0.05, 0.05, 0.15, 0.05]),
            "tier": rng.choice(["A", "B", "C", "D"], n, p=[0.1, 0.2, 0.3, 0.4]),
            "consents": [consents[i] for i in rng.integers(0, 4, n)],
            "lookalike_tier": rng.choice([1.0, 2.0, 5.0, np.nan, np.nan], n),
        }
    )


def eligibility_of(persons: pd.DataFrame, settings) -> pd.DataFrame:
    names = list(settings.decisioning.actions)
    requests = pd.DataFrame(
        {
            "customer_id": np.repeat(persons["customer_id"].to_numpy(), len(names)),
            "action": names * len(persons),
            "at": AT,
        }
    )
    empty = pd.DataFrame({"customer_id": [], "channel": [], "contacted_at": []})
    none = pd.DataFrame({"customer_id": [], "conversion_type": [], "converted_at": []})
    return contact.evaluate(
        requests, persons[list(contact.PERSON_COLUMNS)], empty, none, store.decision_time_rules(settings)
    )


def history(settings, seed: int = 5) -> pd.DataFrame:
    """A record where nurture email worked for tier C leads, and route to sales for tier A leads, not tier C."""
    rng = np.random.default_rng(seed)
    rows = []
    for action, cell, rate, n in (
        ("nurture_email", "lifecycle_stage=lead|tier=C", 0.05, 400),
        ("route_to_sales", "lifecycle_stage=lead|tier=A", 0.3, 60),
        ("route_to_sales", "lifecycle_stage=lead|tier=C", 0.0, 200),
        ("paid_retargeting", "lifecycle_stage=subscriber|tier=D", 0.001, 500),
        ("no_action", "lifecycle_stage=lead|tier=C", 0.002, 2000),
    ):
        rows += [{"action": action, "cell": cell, "responded": int(r)} for r in rng.random(n) < rate]
    return pd.DataFrame(rows)


def decide(persons, settings, budget=None, exploration="thompson", day=DAY, taken_once=None):
    decisioning = settings.decisioning.model_copy(update={"daily_budget_usd": budget, "exploration": exploration})
    estimates = learning.estimate(history(settings), decisioning)
    return engine.decide(persons, eligibility_of(persons, settings), estimates, decisioning, day, "v", AT, taken_once)


@pytest.mark.parametrize("budget", [None, 40.0])
def test_re_scoring_the_stored_explanation_reproduces_every_choice(budget):
    settings = load_policy()
    persons = people(400)
    decided = decide(persons, settings, budget)
    by_id = decided.decisions.set_index("decision_id")
    sample = by_id.sample(150, random_state=1).index
    for did in sample:
        rows = decided.explanations[decided.explanations["decision_id"] == did]
        assert engine.rescore(rows) == by_id.at[did, "arbitrated_action"], rows.to_string()
    acting = decided.decisions[decided.decisions["action"] != engine.NO_ACTION]
    assert len(acting) > 20 and set(acting["action"]) >= {"nurture_email", "paid_retargeting"}
    if budget is not None:
        assert decided.spent_usd <= budget + 1e-9
        refused = decided.explanations["rules_failed"].map(lambda r: any("daily budget" in x for x in r))
        assert refused.any()  # the budget bound, and said so


def test_a_refused_candidate_is_never_chosen_and_the_holdout_gets_no_action():
    settings = load_policy()
    persons = people(600)
    decided = decide(persons, settings)
    chosen = decided.explanations[decided.explanations["chosen"]]
    assert chosen["eligible"].all() and chosen["rules_failed"].map(len).eq(0).all()
    assert (chosen["priority"] >= chosen["threshold"]).all()
    merged = decided.decisions.merge(
        eligibility_of(persons, settings).rename(columns={"action": "candidate"}),
        left_on=["customer_id", "action"],
        right_on=["customer_id", "candidate"],
    )
    assert merged["allowed"].all()  # every action taken passed the contact policy
    holdout = decided.decisions[decided.decisions["is_holdout"]]
    assert 5 <= len(holdout) <= 60  # 5 % of 600
    assert (holdout["action"] == engine.NO_ACTION).all()
    assert (holdout["reason"] == engine.HOLDOUT_REASON).all()
    # the holdout is persistent: the same people on another day, and another day's draws
    later = decide(persons, settings, day=DAY + datetime.timedelta(days=9))
    assert set(later.decisions.loc[later.decisions["is_holdout"], "customer_id"]) == set(holdout["customer_id"])


def test_a_person_or_a_contact_answer_given_twice_is_a_clear_error():
    settings = load_policy()
    persons = people(20)
    decisioning = settings.decisioning
    estimates = learning.estimate(history(settings), decisioning)
    eligibility = eligibility_of(persons, settings)
    twice = pd.concat([persons, persons.iloc[[3]]], ignore_index=True)
    with pytest.raises(ValueError, match="persons: 2 rows repeat a customer_id .first: p0003"):
        engine.decide(twice, eligibility, estimates, decisioning, DAY, "v", AT)
    answered_twice = pd.concat([eligibility, eligibility.iloc[[5]]], ignore_index=True)
    with pytest.raises(ValueError, match="eligibility: 2 rows repeat a customer_id × action .first: p0001, "):
        engine.decide(persons, answered_twice, estimates, decisioning, DAY, "v", AT)


def test_same_input_same_decisions_and_ids():
    settings = load_policy()
    persons = people(300)
    a, b = decide(persons, settings), decide(persons.sample(frac=1, random_state=2), settings)
    cols = ["decision_id", "customer_id", "action", "priority"]
    pd.testing.assert_frame_equal(
        a.decisions[cols].sort_values("customer_id").reset_index(drop=True),
        b.decisions[cols].sort_values("customer_id").reset_index(drop=True),
    )


def test_what_was_learned_moves_the_choice():
    settings = load_policy()
    persons = pd.DataFrame(
        {
            "customer_id": ["lead_c", "lead_a"],
            "time_zone": "Europe/Berlin",
            "time_zone_source": "given",
            "lifecycle_stage": "lead",
            "tier": ["C", "A"],
            "consents": [{"email_marketing", "ad_personalization"}] * 2,
        }
    )
    decided = decide(persons, settings, exploration="mean").decisions.set_index("customer_id")
    estimates = learning.estimate(history(settings), settings.decisioning)
    a, b, source = estimates.posterior("nurture_email", "lifecycle_stage=lead|tier=C")
    assert a / (a + b) > 0.02 and "of 400 responded" in source
    assert decided.at["lead_c", "action"] == "nurture_email"
    assert decided.at["lead_a", "action"] == "route_to_sales"
    # a person already handed to sales is not handed again (`once`)
    again = decide(
        persons,
        settings,
        exploration="mean",
        taken_once=pd.DataFrame({"customer_id": ["lead_a"], "action": ["route_to_sales"]}),
    ).explanations
    row = again[(again["customer_id"] == "lead_a") & (again["candidate"] == "route_to_sales")].iloc[0]
    assert "once: already taken" in row["rules_failed"] and not row["chosen"]


def test_the_closed_loop_ledger_never_breaks_a_cap_or_quiet_hours():
    settings = load_policy()
    persons = people(250, seed=11)
    outcome = run_loop(persons, settings, SCENARIOS["b2b"], days=9, seed=3)
    caps = settings.contact.caps
    start, end = settings.contact.quiet_hours.bounds()
    zones = persons.set_index("customer_id")["time_zone"]
    for run in outcome.runs.values():
        ledger = pd.DataFrame(run.ledger)
        assert len(ledger) > 0, run.policy
        ledger["zone"] = ledger["customer_id"].map(zones)
        ledger["local"] = [
            pd.Timestamp(t).tz_localize("UTC").tz_convert(z).tz_localize(None)
            for t, z in zip(ledger["contacted_at"], ledger["zone"], strict=True)
        ]
        clock = ledger["local"].dt.time
        in_quiet = (clock >= start) | (clock < end) if start > end else (clock >= start) & (clock < end)
        assert not in_quiet.any(), run.policy
        ledger["day"] = ledger["local"].dt.normalize()
        for (customer, channel_), rows in ledger.groupby(["customer_id", "channel"]):
            cap = caps.per_channel.get(channel_)
            days = rows["day"].value_counts()
            if cap and cap.per_day is not None:
                assert days.max() <= cap.per_day, (run.policy, customer, channel_)
            if cap and cap.per_7_days is not None:
                for day in rows["day"]:
                    window = rows[(rows["day"] <= day) & (rows["day"] > day - pd.Timedelta(days=7))]
                    assert len(window) <= cap.per_7_days, (run.policy, customer, channel_)
        for _customer, rows in ledger.groupby("customer_id"):
            assert rows["day"].value_counts().max() <= caps.all_channels.per_day
            for day in rows["day"]:
                window = rows[(rows["day"] <= day) & (rows["day"] > day - pd.Timedelta(days=7))]
                assert len(window) <= caps.all_channels.per_7_days
    nba = outcome.runs["next_best_action"]
    assert nba.spend_usd <= outcome.budget_per_day_usd * outcome.days + 1e-6
    assert 0 < outcome.holdout["holdout_people"] < outcome.holdout["treated_people"]


def test_the_warehouse_decisions_learn_from_the_days_before(tmp_path):
    settings = load_policy()
    home = tmp_path / "home"
    path = build(home)
    import duckdb

    bands = load_transform(DOMAINS["transform"].file).mos__marketing_customer_segments
    con = duckdb.connect(str(path))
    try:
        first, estimates, _ = store.run(con, settings, bands, "v1", NOW)
        store.write(con, first)
        store.write(con, first)  # a re-run of the same day replaces it
        assert con.execute("select count(*) from decisions.next_best_action").fetchone()[0] == len(first.decisions)
        assert estimates.actions["nurture_email"][2] == 0  # nothing taken yet: the prior
        later, learned, _ = store.run(con, settings, bands, "v1", NOW + datetime.timedelta(days=1))
        taken = (first.decisions["action"] != engine.NO_ACTION).sum()
        assert sum(v[2] for k, v in learned.actions.items() if k != engine.NO_ACTION) == taken > 0
        assert learned.actions[engine.NO_ACTION][2] == (first.decisions["action"] == engine.NO_ACTION).sum()
        assert learned.version() != estimates.version()
        assert set(later.explanations["decision_id"]) == set(later.decisions["decision_id"])
        # explanations keep a window of days; the decisions (with their cell) stay for the learning
        store.write(con, later, explanations_days=1)
        days = con.execute("select distinct decision_date from decisions.explanations").fetchall()
        assert days == [(NOW.date() + datetime.timedelta(days=1),)]
        kept = con.execute("select count(distinct decision_date), count(cell) from decisions.next_best_action")
        assert kept.fetchone() == (2, 2 * len(first.decisions))
    finally:
        con.close()


def test_the_contextual_model_learns_p_by_the_cell_attributes_and_rescoring_still_holds():
    settings = load_policy()
    learning_ = settings.decisioning.learning.model_copy(
        update={"model": "contextual", "cells": ("lifecycle_stage", "tier")}
    )
    decisioning = settings.decisioning.model_copy(update={"learning": learning_})
    rng = np.random.default_rng(8)
    extra = pd.DataFrame(
        {"action": "nurture_email", "cell": "lifecycle_stage=subscriber|tier=D", "responded": (rng.random(400) < 0.002)}
    ).astype({"responded": int})
    estimates = learning.estimate(pd.concat([history(settings), extra], ignore_index=True), decisioning)
    assert estimates.contextual is not None
    good_a, good_b, source = estimates.posterior("nurture_email", "lifecycle_stage=lead|tier=C")
    poor_a, poor_b, _ = estimates.posterior("nurture_email", "lifecycle_stage=subscriber|tier=D")
    assert good_a / (good_a + good_b) > 2 * poor_a / (poor_a + poor_b) and "contextual model" in source
    persons = people(200)
    decided = engine.decide(persons, eligibility_of(persons, settings), estimates, decisioning, DAY, "v", AT)
    by_id = decided.decisions.set_index("decision_id")
    for did, rows in decided.explanations.groupby("decision_id"):
        assert engine.rescore(rows) == by_id.at[did, "arbitrated_action"]
