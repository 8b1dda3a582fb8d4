"""Lookalike model (positive–unlabelled): ranking quality against a known propensity, tiers, determinism,
and the bring-your-own CSV command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mos_pipelines.cli import app
from mos_pipelines.configuration import DOMAINS, load_lookalike
from mos_pipelines.lookalike.model import (
    LookalikeError,
    SeedTooSmallError,
    fit_lookalike,
    infer_features,
    rank_population,
)

BUNDLED = load_lookalike(DOMAINS["lookalike"].file).model  # the model settings the warehouse uses


def ModelSettings(**changes):  # noqa: N802 - the bundled model settings with some changed
    return BUNDLED.model_copy(update=changes)


INDUSTRIES = ["software", "retail", "finance", "health", "manufacturing"]


def synthetic_people(n: int, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """People whose chance of being in the seed is a known logistic function of their features."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(INDUSTRIES, size=n)
    employees = rng.lognormal(4, 1.2, size=n)
    sessions = rng.poisson(3, size=n).astype(float)
    sessions[rng.random(n) < 0.1] = np.nan  # missing values
    linear = (
        -4.0
        + 0.8 * np.log(employees) * 0.5
        + 0.35 * np.nan_to_num(sessions, nan=3.0)
        + np.where(industry == "software", 1.2, 0.0)
    )
    propensity = 1 / (1 + np.exp(-linear))
    frame = pd.DataFrame(
        {
            "person_id": [f"p{i:06d}" for i in range(n)],
            "email": [f"user{i}@example.com" for i in range(n)],  # identifier-like text: must be left out
            "industry": industry,
            "employees": employees,
            "sessions_30d": sessions,
            "noise": rng.normal(size=n),
        }
    )
    return frame, propensity


def test_ranking_is_within_005_auc_of_the_true_propensity():
    frame, propensity = synthetic_people(12000)
    is_seed = np.random.default_rng(9).random(len(frame)) < propensity
    spec = infer_features(frame, exclude=("person_id",))
    assert "email" in spec.dropped and "person_id" not in spec.columns
    fit = fit_lookalike(frame, is_seed, spec, ModelSettings(), true_propensity=propensity)
    ev = fit.evaluation
    assert ev.true_propensity_auc is not None and ev.true_propensity_auc > 0.7
    assert ev.auc >= ev.true_propensity_auc - 0.05
    assert ev.lift_at[10] > 2.0  # the top decile holds well over its share of the held-out seed
    assert fit.importances["noise"] < max(fit.importances["sessions_30d"], fit.importances["industry"])
    assert ev.true_propensity_spearman is not None and ev.true_propensity_spearman > 0.5


def test_linear_model_is_the_transparent_alternative():
    frame, propensity = synthetic_people(6000)
    is_seed = np.random.default_rng(1).random(len(frame)) < propensity
    fit = fit_lookalike(
        frame,
        is_seed,
        infer_features(frame, exclude=("person_id",)),
        ModelSettings(kind="linear"),
        true_propensity=propensity,
    )
    assert fit.evaluation.auc >= fit.evaluation.true_propensity_auc - 0.05


def test_scores_are_calibrated_to_the_population_seed_rate():
    frame, propensity = synthetic_people(12000)
    is_seed = np.random.default_rng(9).random(len(frame)) < propensity
    fit = fit_lookalike(frame, is_seed, infer_features(frame, exclude=("person_id",)), ModelSettings())
    mean_score = fit.score(frame).mean()
    assert abs(mean_score - is_seed.mean()) < 0.25 * is_seed.mean()


def test_same_input_gives_the_same_scores_and_version():
    frame, propensity = synthetic_people(3000)
    is_seed = np.random.default_rng(2).random(len(frame)) < propensity
    spec = infer_features(frame, exclude=("person_id",))
    a = fit_lookalike(frame, is_seed, spec, ModelSettings())
    b = fit_lookalike(frame, is_seed, spec, ModelSettings())
    assert a.model_version == b.model_version
    np.testing.assert_array_equal(a.score(frame), b.score(frame))
    c = fit_lookalike(frame, ~is_seed, spec, ModelSettings())
    assert c.model_version != a.model_version


def test_seed_smaller_than_the_minimum_names_the_audience_and_its_size():
    frame, _ = synthetic_people(1000)
    is_seed = np.zeros(len(frame), dtype=bool)
    is_seed[:40] = True
    with pytest.raises(SeedTooSmallError, match=r"'eu_payers'.*40 members.*minimum of 100"):
        fit_lookalike(
            frame, is_seed, infer_features(frame, exclude=("person_id",)), ModelSettings(), audience="eu_payers"
        )


def test_tiers_hold_their_share_of_the_population_best_first():
    ids = pd.Series([f"c{i:04d}" for i in range(1000)])
    scores = np.linspace(1, 0, 1000)
    ranked = rank_population(ids, scores)
    counts = ranked["tier"].value_counts().to_dict()
    assert counts == {1: 10, 2: 10, 3: 10, 5: 20, 10: 50}
    assert ranked["tier"].isna().sum() == 900
    assert ranked.iloc[0]["id"] == "c0000" and ranked.iloc[0]["percentile"] == 100.0
    assert ranked["percentile"].is_monotonic_decreasing


def write_csv(path: Path, n: int = 4000) -> pd.DataFrame:
    frame, propensity = synthetic_people(n, seed=5)
    frame["is_customer"] = np.where(np.random.default_rng(4).random(n) < propensity, "yes", "no")
    frame.loc[frame.index[::17], "industry"] = None  # missing text category
    frame.to_csv(path, index=False)
    return frame


def test_cli_scores_any_csv_and_never_outputs_seed_rows(tmp_path: Path):
    frame = write_csv(tmp_path / "people.csv")
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(
        app,
        [
            "lookalike",
            "score",
            "--input",
            str(tmp_path / "people.csv"),
            "--id-column",
            "person_id",
            "--seed-column",
            "is_customer",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "AUC" in result.output and "lift at top 10 %" in result.output
    scores = pd.read_csv(out)
    seed_ids = set(frame.loc[frame["is_customer"] == "yes", "person_id"])
    assert set(scores["person_id"]) == set(frame["person_id"]) - seed_ids
    assert list(scores.columns) == ["person_id", "score", "percentile", "tier"]
    assert scores["score"].between(0, 1).all()


def test_cli_rejects_a_csv_without_the_seed_column(tmp_path: Path):
    write_csv(tmp_path / "people.csv", n=500)
    result = CliRunner().invoke(
        app,
        [
            "lookalike",
            "score",
            "--input",
            str(tmp_path / "people.csv"),
            "--id-column",
            "person_id",
            "--seed-column",
            "converted",
            "--out",
            str(tmp_path / "o.csv"),
        ],
    )
    assert result.exit_code == 2
    assert "no seed column 'converted'" in result.output and "people.csv" in result.output
    assert not (tmp_path / "o.csv").exists()


def test_unreadable_seed_values_are_reported_by_line(tmp_path: Path):
    frame = write_csv(tmp_path / "people.csv", n=500)
    frame.loc[7, "is_customer"] = "maybe"
    frame.to_csv(tmp_path / "people.csv", index=False)
    from mos_pipelines.lookalike.csv_scoring import score_csv

    with pytest.raises(LookalikeError, match=r"line 9: 'maybe'"):
        score_csv(tmp_path / "people.csv", "person_id", "is_customer")
