"""The MMM end to end through Dagster on marts with a known spend → revenue truth (the weekly world), tiny sampler:
the fit, its tables and convergence check, and the budget split on its curves. PyMC compiles its C code on the
first fit of a machine (minutes on a cold cache), so this module is in `make test-heavy`."""

from __future__ import annotations

import datetime

import duckdb
import numpy as np
import pandas as pd
import pytest

from mos_pipelines.configuration import load_experiments
from mos_pipelines.experiments.daily import update_budget
from mos_pipelines.mmm.tables import latest_fit, latest_posterior
from mos_pipelines.runner import run_assets
from mos_pipelines.settings import Settings
from mos_pipelines.simulation.mmm_world import generate
from tests.integration.conftest import use_home

BUDGET_CHANNELS = ["paid_search", "paid_social", "linkedin", "display"]


def _marts(con: duckdb.DuckDBPyConnection, weeks: int) -> pd.DataFrame:
    """Daily marts from a weekly world: a week's spend and revenue spread evenly over its 7 days."""
    world = generate(21, "flighted", weeks=weeks, n_regions=2, n_channels=4)
    rename = dict(zip(world.truth["channel"], BUDGET_CHANNELS))
    spend, outcome = world.spend.replace({"channel": rename}), world.outcome
    perf, conv = [], []
    for r in spend.itertuples():
        for d in range(7):
            day = r.week_start + datetime.timedelta(days=d)
            perf.append((day, f"{r.channel}_always_on", r.channel, r.region, r.spend_usd / 7, 1.0, 50.0))
    for r in outcome.itertuples():
        for d in range(7):
            day = datetime.datetime.combine(r.week_start + datetime.timedelta(days=d), datetime.time(12))
            conv.append((f"{r.region}-{day:%Y%m%d}", "order", r.region, r.revenue_usd / 7, day))
    con.execute("create schema if not exists marts")
    con.execute(
        "create table marts.fct_channel_performance (date_day date, campaign_id varchar, channel varchar, "
        "region varchar, cost_usd double, conversions double, revenue_usd double)"
    )
    con.executemany("insert into marts.fct_channel_performance values (?, ?, ?, ?, ?, ?, ?)", perf)
    con.execute(
        "create table marts.fct_conversions (conversion_id varchar, conversion_type varchar, region varchar, "
        "revenue_usd double, converted_at timestamp)"
    )
    con.executemany("insert into marts.fct_conversions values (?, ?, ?, ?, ?)", conv)
    # a persistent holdout of paid_social's campaign whose lift is the channel's true contribution
    per_order = float(np.mean([c[3] for c in conv]))
    truth = world.truth.assign(channel=world.truth["channel"].map(rename)).set_index("channel")
    converted = 500 + round(float(truth.loc["paid_social", "contribution_usd"]) / per_order)
    con.execute(
        "create table marts.fct_experiment_holdout as select * from (values "
        f"('paid_social_always_on', false, 10000, {converted}, 30), ('paid_social_always_on', true, 10000, 500, 30)) "
        "t(experiment_id, is_holdout, observed_units, converted_units, window_days)"
    )
    return truth.reset_index()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(mos_home=tmp_path_factory.mktemp("mmm") / "home")
    use_home(settings)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        truth = _marts(con, weeks=52)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"DRAWS": "150", "TUNE": "150", "CHAINS": "2", "CORES": "2", "MIN_ESS": "50"}.items():
            patch.setenv(f"MOS_MMM_{name}", value)
        outcome = run_assets("key:ml/mmm_fit")
    return settings, truth, outcome


def test_the_fit_writes_roi_curves_parameters_and_passes_its_check(fitted):
    settings, truth, outcome = fitted
    assert outcome.success, outcome.failures
    assert outcome.materialized == 1 and outcome.checks_failed == 0
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        fit = latest_fit(con)
        roi = con.execute("select * from ml.mmm_channel_roi order by channel").df()
        curves = con.execute("select * from ml.mmm_response_curves").df()
        params = con.execute("select * from ml.mmm_parameters").df()
    assert fit["status"] == "fitted" and fit["weeks"] == 52 and fit["max_rhat"] <= 1.05 and fit["min_ess_bulk"] >= 50
    assert "## Marketing mix model" in fit["model_card"] and "converged" in fit["model_card"]
    # the asset fed the holdout's lift into the model
    assert fit["lift_tests"] == 1 and "holdout of paid_social_always_on" in fit["model_card"]
    assert sorted(roi["channel"]) == sorted(BUDGET_CHANNELS)
    assert (roi["roi_lower"] <= roi["roi_mean"]).all() and (roi["roi_mean"] <= roi["roi_upper"]).all()
    assert (roi["marginal_roi_mean"] < roi["roi_mean"]).all()  # logistic curves: the next dollar returns less
    # the channel with the highest true ROI is found among the top two
    best = truth.sort_values("roi")["channel"].iloc[-1]
    assert best in set(roi.sort_values("roi_mean")["channel"].iloc[-2:])
    one = curves[curves["channel"] == best].sort_values("spend_multiple")
    assert one["weekly_contribution_mean"].iloc[0] == 0 and one["weekly_contribution_mean"].is_monotonic_increasing
    assert set(params["parameter"]) >= {"adstock_alpha", "saturation_lam", "saturation_beta_usd"}


def test_the_budget_split_uses_the_fitted_curves_within_the_bounds(fitted):
    settings, _, _ = fitted
    config = load_experiments()
    with duckdb.connect(str(settings.warehouse_path)) as con:
        posterior, _ = latest_posterior(con)
        rows, summary = update_budget(con, config)
    assert posterior is not None and summary["method"] == "mmm", summary
    low, high = config.budget.bounds()
    shares = rows.set_index("channel").loc[list(config.budget.channels), "new_share"].to_numpy()
    prev = rows.set_index("channel").loc[list(config.budget.channels), "previous_share"].to_numpy()
    assert shares.sum() == pytest.approx(1.0)
    assert (shares >= np.minimum(low, 0.25) - 1e-9).all() and (shares <= np.asarray(high) + 1e-9).all()
    assert (np.abs(shares - prev) <= config.budget.max_daily_change + 1e-9).all()
    assert summary["expected_return_lower"] <= summary["expected_return_usd"] <= summary["expected_return_upper"]


def test_a_rerun_on_unchanged_weeks_keeps_the_fit(fitted):
    settings, _, _ = fitted
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        before = con.execute("select fit_id, fitted_at from ml.mmm_fits").fetchall()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"DRAWS": "150", "TUNE": "150", "CHAINS": "2", "CORES": "2", "MIN_ESS": "50"}.items():
            patch.setenv(f"MOS_MMM_{name}", value)
        outcome = run_assets("key:ml/mmm_fit")
    assert outcome.success and outcome.checks_failed == 0, outcome.failures
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select fit_id, fitted_at from ml.mmm_fits").fetchall() == before
        assert con.execute("select count(*) from ml.mmm_posterior").fetchone() == (300 * 4,)
