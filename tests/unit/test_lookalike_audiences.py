"""Audience config, fitting against a real DuckDB table, degradation judgement and its notification."""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from mos_pipelines.configuration import DOMAINS, ConfigError
from mos_pipelines.configuration import load_lookalike as load_config
from mos_pipelines.configuration.lookalike import Audience
from mos_pipelines.lookalike import score_tables
from mos_pipelines.lookalike.audiences import fit_audience, judge, model_card, model_run_row
from mos_pipelines.lookalike.model import SeedTooSmallError

NOW = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)


def features_db(n: int = 4000, signal: float = 1.5) -> duckdb.DuckDBPyConnection:
    rng = np.random.default_rng(0)
    persona = rng.choice(["marketer", "engineer", "sales"], size=n)
    sessions = rng.poisson(3, size=n)
    linear = -3.5 + signal * (persona == "marketer") + 0.25 * sessions
    paying = rng.random(n) < 1 / (1 + np.exp(-linear))
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "persona": persona,
            "sessions_30d": sessions,
            "region": rng.choice(["EU", "NA"], size=n),
            "order_count": paying.astype(int),
            "is_email_marketing_consented": rng.random(n) < 0.8,
        }
    )
    con = duckdb.connect()
    con.execute("create schema marts")
    con.register("_f", frame)
    con.execute("create table marts.dim_customer_features as select * from _f")
    return con


def write_config(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


CONFIG = """
model: {kind: gradient_boosting, min_seed_size: 100}
degradation: {max_recall_at_10_drop: 0.10, max_auc_drop: 0.05}
default_features: [persona, sessions_30d, region]
audiences:
  - name: payers
    seed: "order_count > 0"
    population: "order_count = 0 and is_email_marketing_consented"
"""


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        ("audiences:\n  - name: a\n    population: 'true'\n", "audiences[0].seed", "a value (the key is required)"),
        ("model: {depth: 3}\naudiences: []\n", "model.depth", "one of the keys kind, negatives_per_positive"),
        ("model: {holdout_share: 1.5}\n", "model.holdout_share", "a number < 1"),
        ("audiences:\n  - {name: Payers, seed: x, population: y}\n", "audiences[0].name", "a lower_snake_case name"),
        (
            "default_features: []\naudiences:\n  - {name: a, seed: x, population: y}\n",
            "audiences[0].features",
            "features: list them here or under default_features",
        ),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path: Path, body: str, key: str, expected: str):
    path = write_config(tmp_path / "lookalike.yaml", body)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert (error.value.file, error.value.key) == (str(path), key)
    assert error.value.expected.startswith(expected), error.value.expected


def test_bundled_config_loads():
    config = load_config(DOMAINS["lookalike"].file)  # explicitly: a user's MOS_LOOKALIKE_CONFIG may point elsewhere
    assert [a.name for a in config.audiences] == ["paying_lookalike_eu", "paying_lookalike_all"]
    leaking = {
        "order_count",
        "orders_90d",
        "revenue_usd",
        "revenue_usd_90d",
        "avg_order_value_usd",
        "session_count",
        "sessions_7d",
        "sessions_30d",
        "sessions_90d",
        "events_90d",
        "event_count",
        "device_count",
        "demo_request_count_90d",
        "pre_order_window_days",
        "identified_sessions_pre_order_90d",
    }
    for audience in config.audiences:  # commerce, order-linked web activity, a window that ends at the order
        assert not leaking & set(audience.features), audience.name


def test_audience_scores_population_only_and_card_says_what_it_is(tmp_path: Path):
    con = features_db()
    config = load_config(write_config(tmp_path / "l.yaml", CONFIG))
    result = fit_audience(con, config.audiences[0], config.model, NOW)
    seed = set(
        con.execute("select customer_id from marts.dim_customer_features where order_count > 0").df()["customer_id"]
    )
    assert not seed & set(result.scores["customer_id"])
    assert result.fit.evaluation.auc > 0.65
    card = model_card(result)
    assert "order_count > 0" in card and "AUC" in card and "Limits" in card


def test_a_seed_below_the_minimum_fails_naming_the_audience(tmp_path: Path):
    con = features_db(n=600)
    config = load_config(write_config(tmp_path / "l.yaml", CONFIG.replace("min_seed_size: 100", "min_seed_size: 5000")))
    with pytest.raises(SeedTooSmallError, match=r"'payers'.*minimum of 5000"):
        fit_audience(con, config.audiences[0], config.model, NOW)


def test_a_much_worse_fit_is_degraded_notified_and_reported_as_latest(tmp_path: Path):
    con = features_db()
    config = load_config(write_config(tmp_path / "l.yaml", CONFIG))
    score_tables.ensure_tables(con)
    first = fit_audience(con, config.audiences[0], config.model, NOW)
    judge(
        first,
        score_tables.last_accepted_run(con, "payers", config.audiences[0].definition_hash(config.model)),
        config.degradation,
    )
    score_tables.write_result(con, first, model_run_row(first, "run1", NOW))
    assert first.status == "accepted"

    # The features lose their signal (tracking of sessions breaks, personas go missing): drift.
    con.execute("update marts.dim_customer_features set sessions_30d = 0, persona = 'unknown'")
    later = NOW + datetime.timedelta(days=1)
    second = fit_audience(con, config.audiences[0], config.model, later)
    judge(
        second,
        score_tables.last_accepted_run(con, "payers", config.audiences[0].definition_hash(config.model)),
        config.degradation,
    )
    row = model_run_row(second, "run2", later)
    score_tables.write_result(con, second, row)
    assert second.status == "degraded" and second.reasons
    score_tables.notify_degradation(con, second, row["model_run_id"], later)

    note = con.execute("select * from insights.notifications").df()
    assert len(note) == 1 and note.at[0, "subject"] == "payers"
    figures = {
        "auc": (first.fit.evaluation.auc, second.fit.evaluation.auc),
        "recall_at_10": (first.fit.evaluation.recall_at[10], second.fit.evaluation.recall_at[10]),
    }
    metric = note.at[0, "metric"]
    assert metric == second.dropped[0][0] and {m for m, _, _ in second.dropped} <= set(figures)
    assert note.at[0, "previous_figure"] == pytest.approx(figures[metric][0])  # the figure it fell from ...
    assert note.at[0, "figure"] == pytest.approx(figures[metric][1])  # ... to
    assert note.at[0, "figure"] < note.at[0, "previous_figure"]
    assert "re-run" in note.at[0, "suggested_action"]
    latest = score_tables.latest_statuses(con)
    assert latest.set_index("audience").at["payers", "status"] == "degraded"
    # the accepted baseline stays the first run
    assert (
        score_tables.last_accepted_run(con, "payers", config.audiences[0].definition_hash(config.model))["model_run_id"]
        == "payers:run1"
    )


def test_a_changed_definition_starts_a_new_baseline(tmp_path: Path):
    config = load_config(write_config(tmp_path / "l.yaml", CONFIG))
    other = load_config(
        write_config(tmp_path / "m.yaml", CONFIG.replace("[persona, sessions_30d, region]", "[persona, region]"))
    )
    a, b = config.audiences[0], other.audiences[0]
    assert a.definition_hash(config.model) != b.definition_hash(other.model)
    assert a.definition_hash(config.model) == load_config(tmp_path / "l.yaml").audiences[0].definition_hash(
        config.model
    )


LEARN_FROM = """
model: {kind: gradient_boosting, min_seed_size: 30}
default_features: [persona, sessions_30d, region]
audiences:
  - name: eu_payers
    seed: "order_count > 0 and region = 'EU'"
    population: "order_count = 0 and region = 'EU'"
    learn_from: {seed: "order_count > 0", population: "order_count = 0"}
"""


def test_a_small_seed_can_learn_from_a_wider_definition_but_is_judged_on_its_own_people(tmp_path: Path):
    con = features_db()
    config = load_config(write_config(tmp_path / "l.yaml", LEARN_FROM))
    (audience,) = config.audiences
    result = fit_audience(con, audience, config.model, NOW)
    eu = set(con.sql("select customer_id from marts.dim_customer_features where region = 'EU'").df()["customer_id"])
    others_paying = con.sql(
        "select count(*) as n from marts.dim_customer_features where region <> 'EU' and order_count > 0"
    ).df()["n"][0]
    assert result.fit.sizes["wider_train_seed"] == others_paying  # every payer elsewhere trains ...
    assert result.fit.sizes["wider_train_negatives"] > 0
    assert set(result.evaluation["customer_id"]) <= eu  # ... but only the audience's people evaluate
    assert set(result.scores["customer_id"]) <= eu
    assert "wider seed" in model_card(result)
    row = model_run_row(result, "run1", NOW)
    assert (row["wider_train_seed"], row["wider_train_negatives"]) == (
        others_paying,
        result.fit.sizes["wider_train_negatives"],
    )
    score_tables.ensure_tables(con)
    score_tables.write_result(con, result, row)
    assert con.sql("select wider_train_seed from ml.model_runs").fetchall() == [(others_paying,)]
    plain = Audience(name=audience.name, seed=audience.seed, population=audience.population, features=audience.features)
    assert plain.definition_hash(config.model) != audience.definition_hash(config.model)  # a new baseline


def test_learn_from_needs_a_seed_and_a_population(tmp_path: Path):
    bad = LEARN_FROM.replace('{seed: "order_count > 0", population: "order_count = 0"}', '{seed: "order_count > 0"}')
    with pytest.raises(ConfigError) as error:
        load_config(write_config(tmp_path / "l.yaml", bad))
    assert error.value.key == "audiences[0].learn_from.population"


def test_a_drop_within_the_noise_of_small_holdouts_is_said_but_not_degraded(tmp_path: Path):
    """Against a previous fit measured on a holdout of 20 seeds, a fall of 0.06 in AUC and 0.12 in recall is more than
    the allowed amounts but within what two such holdouts differ by on their own: accepted, with the reason said;
    with noise_z 0 the same fall is degraded, and a fall far beyond the noise is degraded either way."""
    con = features_db()
    config = load_config(write_config(tmp_path / "l.yaml", CONFIG))
    result = fit_audience(con, config.audiences[0], config.model, NOW)
    ev = result.fit.evaluation
    assert ev.recall_at[10] < 0.85  # room for a previous recall 0.12 higher

    def previous(auc_rise: float, recall_rise: float, holdout: int, ci: float) -> dict:
        before = ev.auc + auc_rise
        return {
            "model_run_id": "payers:run0",
            "auc": before,
            "auc_ci_low": before - ci,
            "auc_ci_high": before + ci,
            "recall_at_10": ev.recall_at[10] + recall_rise,
            "holdout_seed": holdout,
        }

    small = previous(0.06, 0.12, holdout=20, ci=0.12)  # a 95 % interval of ±0.12: what 20 seeds give
    judge(result, small, config.degradation)
    assert result.status == "accepted" and not result.dropped and not result.reasons
    assert [r.split(" fell")[0] for r in result.within_noise] == ["recall in the top 10 %", "AUC"]
    assert all("within the noise of holdouts of 20 and" in r for r in result.within_noise)
    assert model_run_row(result, "run1", NOW)["status_reason"] == "; ".join(result.within_noise)

    strict = fit_audience(con, config.audiences[0], config.model, NOW)
    judge(strict, small, config.degradation.model_copy(update={"noise_z": 0}))
    assert strict.status == "degraded" and [m for m, _, _ in strict.dropped] == ["recall_at_10", "auc"]

    # The previous run stored without an interval or a holdout size: the current fit's noise stands for both.
    bare = fit_audience(con, config.audiences[0], config.model, NOW)
    judge(bare, {**small, "auc_ci_low": None, "auc_ci_high": float("nan"), "holdout_seed": None}, config.degradation)
    assert bare.status == "accepted" and len(bare.within_noise) == 2
    assert f"holdouts of {ev.holdout_seed} and {ev.holdout_seed} seeds" in bare.within_noise[0]

    # A figure missing on either side is not judged (no reason with a nan in it).
    missing = fit_audience(con, config.audiences[0], config.model, NOW)
    judge(missing, {**small, "recall_at_10": float("nan"), "auc": None}, config.degradation)
    assert missing.status == "accepted" and not missing.reasons and not missing.within_noise

    far = fit_audience(features_db(signal=0.0), config.audiences[0], config.model, NOW)  # no signal left: AUC ~0.5
    assert far.fit.evaluation.auc < 0.6
    before = {"auc": 0.9, "auc_ci_low": 0.895, "auc_ci_high": 0.905, "recall_at_10": 0.0, "holdout_seed": 20_000}
    judge(far, before, config.degradation)
    assert far.status == "degraded" and [m for m, _, _ in far.dropped] == ["auc"]
    assert "beyond the noise of the holdouts" in far.reasons[0]

    # One metric beyond the noise, the other within it: the degradation names only the first.
    mixed = fit_audience(features_db(signal=0.0), config.audiences[0], config.model, NOW)
    recall = mixed.fit.evaluation.recall_at[10]
    judge(mixed, {**before, "recall_at_10": recall + 0.15, "holdout_seed": 15}, config.degradation)
    assert mixed.status == "degraded" and [m for m, _, _ in mixed.dropped] == ["auc"]
    assert len(mixed.reasons) == 1 and "not degraded" not in model_run_row(mixed, "run2", NOW)["status_reason"]
    assert mixed.within_noise and mixed.within_noise[0].startswith("recall in the top 10 %")
