"""Insights logic without a build: statistics, the metric compiler, selection, notifications and the
routing of lookalike degradation alerts."""

from __future__ import annotations

import datetime
import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mos_pipelines.configuration import load_insights as load_config
from mos_pipelines.insights import insight_tables
from mos_pipelines.insights.candidate import Candidate, RunContext
from mos_pipelines.insights.effect_statistics import (
    benjamini_hochberg,
    binomial_log_variance,
    compare_proportions,
    compare_ratios,
    compound_log_variance,
    order_value_cv2,
    ratio_estimate,
    revenue_week_vs_baseline,
    week_vs_baseline,
)
from mos_pipelines.insights.lookalike_degradation import lookalike_degradation
from mos_pipelines.insights.notify import changed_materially, notify
from mos_pipelines.insights.pipeline import phrase
from mos_pipelines.insights.selection import decide
from mos_pipelines.insights.semantic import Filter, SemanticError, SemanticLayer
from mos_pipelines.lookalike import score_tables

NOW = datetime.datetime(2026, 2, 1, 8, tzinfo=datetime.UTC)


# -- statistics -----------------------------------------------------------------------------------


def test_ratio_variance_is_the_linearised_estimator_over_days() -> None:
    num, den = np.array([3.0, 5.0, 2.0, 6.0]), np.array([30.0, 40.0, 25.0, 45.0])
    est = ratio_estimate(num, den)
    r = num.sum() / den.sum()
    assert est.value == pytest.approx(r)
    assert est.variance == pytest.approx(4 / 3 * np.sum((num - r * den) ** 2) / den.sum() ** 2)


def test_comparing_a_ratio_with_itself_finds_nothing_and_the_interval_is_symmetric_on_the_log_scale() -> None:
    g = np.random.default_rng(1)
    sessions = g.poisson(200, 21).astype(float)
    a = ratio_estimate(g.binomial(sessions.astype(int), 0.05).astype(float), sessions)
    b = ratio_estimate(g.binomial(sessions.astype(int), 0.10).astype(float), sessions)
    same = compare_ratios(a, a)
    assert same.ratio == pytest.approx(1.0) and same.p_value == pytest.approx(1.0)
    ab, ba = compare_ratios(a, b), compare_ratios(b, a)
    assert ab.ratio == pytest.approx(1 / ba.ratio) and ab.p_value == pytest.approx(ba.p_value)
    assert math.log(ab.ratio) - math.log(ab.ci_low) == pytest.approx(math.log(ab.ci_high) - math.log(ab.ratio))
    assert ab.ci_high < 1 and ab.p_value < 1e-6  # 5 % vs 10 % over ~4,200 sessions each


def test_relative_rate_of_two_proportions_matches_the_closed_form() -> None:
    result = compare_proportions(30, 1000, 20, 1000)
    se = math.sqrt(1 / 30 - 1 / 1000 + 1 / 20 - 1 / 1000)
    assert result.ratio == pytest.approx(1.5)
    assert result.ci_low == pytest.approx(math.exp(math.log(1.5) - 1.959964 * se), rel=1e-5)


def test_benjamini_hochberg_adjusts_in_input_order() -> None:
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.20])
    # sorted p: .01 .03 .04 .20 → p·m/rank: .04 .06 .0533 .20 → running min from the top: .04 .0533 .0533 .20
    assert q == pytest.approx([0.04, 0.053333, 0.053333, 0.20], rel=1e-4)


def test_a_week_is_judged_against_the_same_weekdays_before_it() -> None:
    weekly = np.array([100, 110, 105, 120, 115, 40, 30], dtype=float)  # weekday pattern, weekend dip
    steady = np.concatenate([weekly, weekly + [2, -1, 0, 1, -2, 1, 0], weekly * 1.0])
    quiet = week_vs_baseline(steady, 2)
    assert abs(quiet.change) < 0.02 and quiet.p_value > 0.5
    dropped = week_vs_baseline(np.concatenate([weekly, weekly, weekly * 0.6]), 2)
    # identical baseline weeks: dispersion floors at Poisson; the score statistic (≈ −8) is referred to t on
    # 14 − 7 df, more cautious than the normal reference but far beyond any threshold
    assert dropped.change == pytest.approx(-0.4) and dropped.dispersion == 1.0
    assert 2 * stats.norm.sf(8) < dropped.p_value < 2 * stats.t.sf(7, 7)
    assert dropped.ci_low < -0.4 < dropped.ci_high < 0
    gone = week_vs_baseline(np.concatenate([weekly, weekly, weekly * 0]), 2)  # tracking broke: nothing arrives
    assert gone.change == -1 and gone.ci_low == pytest.approx(-1) and gone.p_value < 1e-4


def test_a_noisier_baseline_widens_the_weeks_interval() -> None:
    weekly = np.array([100, 110, 105, 120, 115, 40, 30], dtype=float)
    calm = week_vs_baseline(np.concatenate([weekly, weekly, weekly * 1.3]), 2)
    swinging = week_vs_baseline(np.concatenate([weekly * 0.6, weekly * 1.4, weekly * 1.3]), 2)
    assert swinging.dispersion > 10 * calm.dispersion
    assert swinging.ci_high - swinging.ci_low > 2 * (calm.ci_high - calm.ci_low)
    assert calm.p_value < 1e-3 and swinging.p_value > 0.05


def _orders(g: np.random.Generator, days: int, per_day: float, sigma: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Daily order counts and revenue: Poisson orders of log-normal amounts (median $300)."""
    n = g.poisson(per_day, days).astype(float)
    revenue = np.array([g.lognormal(math.log(300), sigma, int(k)).sum() for k in n])
    return revenue, n


def test_order_value_dispersion_is_recovered_from_daily_totals() -> None:
    g = np.random.default_rng(5)
    revenue, orders = _orders(g, 400, 6.0, sigma=1.0)
    true_cv2 = math.exp(1.0) - 1  # log-normal: CV² = e^{σ²} − 1
    assert order_value_cv2(revenue, orders) == pytest.approx(true_cv2, rel=0.25)
    assert math.isnan(order_value_cv2(np.array([0.0, 120.0]), np.array([0.0, 1.0])))  # one day with orders


def test_one_big_order_is_not_a_revenue_anomaly_but_fewer_orders_are() -> None:
    g = np.random.default_rng(7)
    revenue, orders = _orders(g, 35, 4.0)
    big = revenue.copy()
    big[-2] += 25 * float(np.median(revenue[orders > 0] / orders[orders > 0]))  # one enterprise deal in the week
    compound = revenue_week_vs_baseline(big, orders, 4, cv2_floor=0.0)
    naive = week_vs_baseline(big, 4)  # quasi-Poisson on dollars from the baseline alone
    assert naive.p_value < 0.05 < compound.result.p_value  # the old test called it; the compound model does not
    assert compound.result.ci_high > 1.5 * naive.ci_high
    revenue, orders = _orders(g, 35, 40.0)
    fewer = [np.r_[series[:-7], series[-14:-7] * 0.4] for series in (revenue, orders)]  # 60 % of the orders gone
    dropped = revenue_week_vs_baseline(*fewer, 4, cv2_floor=0.0)
    assert dropped.result.p_value < 0.01 and dropped.result.ci_high < 0
    assert dropped.orders_expected == pytest.approx(orders[:-7].sum() / 4)


def test_few_events_widen_a_ratios_interval_to_at_least_the_count_models() -> None:
    # five conversions spread evenly over 28 days: the day-to-day residuals are tiny, the count is not
    sessions = np.full(28, 50.0)
    conversions = np.zeros(28)
    conversions[::6] = 1.0
    smooth = ratio_estimate(conversions, sessions)
    floored = smooth.with_floor(binomial_log_variance(conversions.sum(), sessions.sum()))
    assert floored.log_se**2 == pytest.approx(1 / 5 - 1 / 1400)
    assert floored.log_se > smooth.log_se
    other = ratio_estimate(np.full(28, 2.0), sessions).with_floor(binomial_log_variance(56, 1400))
    assert compare_ratios(floored, other).ci_high > compare_ratios(smooth, other).ci_high
    assert compound_log_variance(20, 3.0) == pytest.approx(4 / 20)


def test_roas_of_two_equal_arms_with_heavy_tailed_orders_is_rarely_called_different() -> None:
    """False positives at 0.05 of the ROAS comparison under the null, 5 orders per arm over 28 days, log-normal
    amounts with CV² ≈ 3.2 (σ = 1.2): 15 % from the delta method over days alone (seeded, 400 trials), at most
    the nominal rate with the compound floor."""
    g = np.random.default_rng(11)
    cv2 = math.exp(1.2**2) - 1
    rejections = 0
    trials = 400
    for _ in range(trials):
        arms = []
        for _arm in range(2):
            revenue, orders = _orders(g, 28, 5 / 28)
            cost = np.full(28, 100.0)
            arms.append(ratio_estimate(revenue, cost).with_floor(compound_log_variance(orders.sum(), cv2)))
        rejections += compare_ratios(*arms).p_value < 0.05
    assert rejections / trials <= 0.05


# -- metric compiler --------------------------------------------------------------------------------

MANIFEST = {
    "semantic_models": [
        {
            "name": "perf",
            "defaults": {"agg_time_dimension": "day"},
            "node_relation": {"schema_name": "marts", "alias": "perf"},
            "dimensions": [
                {"name": "day", "type": "time"},
                {"name": "channel", "type": "categorical"},
                {"name": "region", "type": "categorical", "expr": "upper(region_code)"},
            ],
            "measures": [
                {"name": "orders_total", "agg": "sum", "expr": "orders"},
                {"name": "visits_total", "agg": "sum", "expr": "visits"},
                {"name": "cost_total", "agg": "sum", "expr": "cost"},
                {"name": "revenue_total", "agg": "sum", "expr": "revenue"},
            ],
        }
    ],
    "metrics": [
        {"name": "orders", "type": "simple", "type_params": {"measure": {"name": "orders_total"}}},
        {"name": "visits", "type": "simple", "type_params": {"measure": {"name": "visits_total"}}},
        {"name": "cost", "type": "simple", "type_params": {"measure": {"name": "cost_total"}}},
        {"name": "revenue", "type": "simple", "type_params": {"measure": {"name": "revenue_total"}}},
        {
            "name": "cvr",
            "type": "ratio",
            "type_params": {"numerator": {"name": "orders"}, "denominator": {"name": "visits"}},
        },
        {
            "name": "roi",
            "type": "derived",
            "type_params": {
                "expr": "(revenue - cost) / nullif(cost, 0)",
                "metrics": [{"name": "revenue"}, {"name": "cost"}],
            },
        },
        {"name": "running", "type": "cumulative", "type_params": {}},
    ],
}


@pytest.fixture
def perf() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("""create table marts.perf as select * from (values
        (date '2026-01-01', 'email', 'eu', 2, 40, 1.0, 90.0), (date '2026-01-02', 'email', 'eu', 3, 60, 1.0, 50.0),
        (date '2026-01-01', 'search', 'eu', 1, 50, 30.0, 20.0), (date '2026-01-01', 'search', 'na', 4, 80, 60.0, 0.0),
        (date '2026-01-02', 'search', 'na', 0, 0, 0.0, 0.0)
    ) t(day, channel, region_code, orders, visits, cost, revenue)""")
    return con


def test_compiled_ratio_and_derived_metrics_equal_their_definitions(perf: duckdb.DuckDBPyConnection) -> None:
    layer = SemanticLayer(MANIFEST)
    query = layer.query(["cvr", "roi"], ["channel", "region"], [Filter("region", "=", "EU")])
    frame = layer.run(perf, query).set_index("channel")
    assert frame.at["email", "cvr"] == pytest.approx(5 / 100) and frame.at["search", "cvr"] == pytest.approx(1 / 50)
    assert frame.at["email", "roi"] == pytest.approx((140 - 2) / 2)
    assert {"orders", "visits", "revenue", "cost"} <= set(frame.columns)  # components come along
    assert "--where \"{{ Dimension('perf__region') }} = 'EU'\"" in query.mf_command
    by_week = layer.run(
        perf, layer.query(["cvr"], ["metric_time__week", "channel"], [Filter("channel", "=", "search")])
    )
    assert len(by_week) == 1 and by_week["cvr"].iloc[0] == pytest.approx(5 / 130)  # a zero-visit day adds nothing


def test_the_compiler_names_what_it_cannot_answer() -> None:
    layer = SemanticLayer(MANIFEST)
    with pytest.raises(SemanticError, match="no metric 'profit'"):
        layer.query(["profit"])
    with pytest.raises(SemanticError, match="cumulative"):
        layer.query(["running"])
    with pytest.raises(SemanticError, match="no dimension 'country'"):
        layer.query(["cvr"], ["country"])


def test_a_metric_sliced_by_a_dimension_its_model_lacks_is_answered_by_its_by_dimension_twin(perf) -> None:
    manifest = {
        "semantic_models": [
            *MANIFEST["semantic_models"],
            {
                "name": "perf_seg",
                "defaults": {"agg_time_dimension": "day"},
                "node_relation": {"schema_name": "marts", "alias": "perf_seg"},
                "dimensions": [
                    {"name": "day", "type": "time"},
                    {"name": "channel", "type": "categorical"},
                    {"name": "segment", "type": "categorical", "expr": "seg"},
                ],
                "measures": [
                    {"name": "seg_orders_total", "agg": "sum", "expr": "orders"},
                    {"name": "seg_visits_total", "agg": "sum", "expr": "visits"},
                ],
            },
        ],
        "metrics": [
            *MANIFEST["metrics"],
            {"name": "orders_by_segment", "type": "simple", "type_params": {"measure": {"name": "seg_orders_total"}}},
            {"name": "visits_by_segment", "type": "simple", "type_params": {"measure": {"name": "seg_visits_total"}}},
            {
                "name": "cvr_by_segment",
                "type": "ratio",
                "type_params": {
                    "numerator": {"name": "orders_by_segment"},
                    "denominator": {"name": "visits_by_segment"},
                },
            },
        ],
    }
    layer = SemanticLayer(manifest)
    assert layer.metric_for("cvr", "region") == "cvr"
    assert layer.metric_for("cvr", "segment") == "cvr_by_segment"
    assert layer.metric_for("cost", "segment") is None  # no cost by segment: not invented
    perf.execute("""create table marts.perf_seg as select * from (values
        (date '2026-01-01', 'email', 'small', 2, 40), (date '2026-01-01', 'email', 'large', 1, 10)
    ) t(day, channel, seg, orders, visits)""")
    query = layer.query(
        ["cvr_by_segment"],
        ["segment"],
        [Filter("channel", "=", "email")],
        aliases={"cvr_by_segment": "cvr", "orders_by_segment": "orders", "visits_by_segment": "visits"},
    )
    frame = layer.run(perf, query).set_index("segment")
    assert list(frame.columns) == ["cvr", "orders", "visits"] == list(query.columns[1:])
    assert frame.at["small", "cvr"] == pytest.approx(2 / 40) and frame.at["large", "visits"] == 10
    assert query.mf_command.startswith("mf query --metrics cvr_by_segment")


# -- selection ----------------------------------------------------------------------------------------


def candidate(key: str, p: float, effect: float, impact: float | None = 500.0, **kw) -> Candidate:
    return Candidate(
        key=key,
        insight_type=kw.pop("insight_type", "channel_comparison"),
        subject={},
        objective="conversion",
        hypothesis="h",
        prompt_id="insight.channel_comparison",
        facts={},
        call_to_action="a",
        evidence={},
        effect_size=effect,
        p_value=p,
        impact_usd=impact,
        relative_effect=max(effect, 1 / effect) - 1,
        **kw,
    )


def test_each_insight_type_is_its_own_multiple_testing_family() -> None:
    config = load_config()
    strong = [candidate(f"channel{i}", 1e-4 * (i + 1), 2.0) for i in range(40)]
    variants = [candidate("variant-null", 0.02, 1.5, insight_type="experiment_winner")] + [
        candidate(f"variant{i}", 0.5, 1.3, insight_type="experiment_winner") for i in range(9)
    ]
    decide(strong + variants, config)
    # pooled, p = 0.02 would be rank 41 of 50: q = 0.02 × 50 / 41 < 0.05; in its own family of ten it is not
    assert variants[0].q_value == pytest.approx(0.02 * 10)
    assert variants[0].status == "rejected_not_significant" and all(c.status == "accepted" for c in strong)


def test_only_significant_and_material_candidates_become_insights() -> None:
    config = load_config()
    found = [
        candidate("strong", 1e-6, 2.0),
        candidate("noise", 0.4, 1.5),
        candidate("small", 1e-8, 1.05),
        candidate("cheap", 1e-7, 3.0, impact=1.0),
        candidate("thin", math.nan, 1.0, untestable="too little data"),
    ]
    decide(found, config)
    status = {c.key: c.status for c in found}
    assert status == {
        "strong": "accepted",
        "noise": "rejected_not_significant",
        "small": "rejected_not_material",
        "cheap": "rejected_not_material",
        "thin": "rejected_insufficient_data",
    }
    assert found[0].q_value == pytest.approx(4 * 1e-6 / 3)  # BH: third smallest of four tested p-values
    assert "q = " in found[1].reason and "impact $1" in found[3].reason


def test_a_repeat_counts_as_changed_only_when_its_effect_moved_materially() -> None:
    assert not changed_materially(2.0, 2.2, 0.2, "channel_comparison")
    assert changed_materially(2.0, 2.5, 0.2, "channel_comparison")
    assert changed_materially(-0.3, 0.1, 0.2, "anomaly")  # flipped direction
    assert not changed_materially(-0.30, -0.33, 0.2, "anomaly")


# -- lookalike degradation through the notification flow --------------------------------------------


def test_a_lookalike_degradation_becomes_an_insight_and_its_alert_is_routed(tmp_path) -> None:
    con = duckdb.connect()
    insight_tables.ensure_tables(con)
    score_tables.ensure_tables(con)
    runs = pd.DataFrame(
        [
            {
                "model_run_id": "eu:r1",
                "audience": "eu",
                "run_id": "r1",
                "model_version": "v1",
                "model_kind": "gb",
                "definition_hash": "h",
                "status": "accepted",
                "recall_at_10": 0.45,
                "holdout_seed": 200,
                "auc": 0.8,
                "compared_with_run": None,
                "fitted_at": NOW - datetime.timedelta(days=1),
            },
            {
                "model_run_id": "eu:r2",
                "audience": "eu",
                "run_id": "r2",
                "model_version": "v2",
                "model_kind": "gb",
                "definition_hash": "h",
                "status": "degraded",
                "recall_at_10": 0.20,
                "holdout_seed": 200,
                "auc": 0.7,
                "compared_with_run": "eu:r1",
                "fitted_at": NOW,
            },
        ]
    )
    con.register("_runs", runs)
    con.execute("insert into ml.model_runs by name select * from _runs")
    alert = score_tables.degradation_notification_id("eu:r2")
    con.execute(
        """insert into insights.notifications (notification_id, created_at, source, severity, subject, title,
        message, metric, figure, previous_figure, suggested_action, status)
        values (?, ?, 'lookalike', 'warning', 'eu', 't', 'm', 'recall_at_10', 0.2, 0.45, 'a', 'new')""",
        [alert, NOW],
    )
    config = load_config()
    ctx = RunContext(con, None, config, NOW.date(), NOW.date(), NOW)  # this family reads ml.model_runs only
    found, skips = lookalike_degradation(ctx)
    assert not skips and len(found) == 1
    insight = found[0]
    assert insight.effect_size == pytest.approx(-0.25) and insight.ci_high < 0 and insight.p_value < 1e-6
    decide(found, config)
    phrase(found, None)
    assert insight.status == "accepted"
    assert insight.statement.startswith("The lookalike model for audience eu finds 20 % of held-out seed members")
    insight_tables.write_insights(con, found, NOW)
    result = notify(con, config, now=NOW)
    assert result.routed == [alert]
    raw = con.execute(
        "select status, insight_id from insights.notifications where notification_id = ?", [alert]
    ).fetchall()
    assert raw[0] == ("routed", insight.insight_id(NOW))
    ops = result.rankings[result.rankings["reader_id"] == "marketing_ops"]
    assert list(ops["decision"]) == ["notified"]  # an operations insight reaches the operations reader


def test_an_icp_tier_that_converts_better_on_a_channel_becomes_a_traceable_insight() -> None:
    """Planted: tier A customers convert 3× as often from paid social as the other tiers; email is the same for all
    tiers. The ICP family finds the first, not the second, and the statement traces to its evidence rows."""
    from mos_pipelines.configuration import load_transform
    from mos_pipelines.insights.icp_comparisons import icp_comparisons
    from mos_pipelines.insights.traceability import problems

    g = np.random.default_rng(4)
    model = load_transform().mos__marketing_kpi_attribution_model
    kpi = load_transform().mos__marketing_kpi_conversion_types[0]
    con = duckdb.connect()
    con.execute("create schema policy; create schema marts")
    tiers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(400)], "tier": list("ABCD") * 100})
    con.register("_tiers", tiers)
    con.execute("create table policy.icp_scores as select * from _tiers")
    sessions, conversions = [], []
    start = NOW.date() - datetime.timedelta(days=27)
    for day in range(28):
        date = start + datetime.timedelta(days=day)
        for channel, rates in (("paid_social", {"A": 0.15}), ("email", {})):
            for i in g.choice(400, 60, replace=False):
                tier = tiers.at[int(i), "tier"]
                sessions.append((f"c{i}", channel, date))
                if g.random() < rates.get(tier, 0.05):
                    conversions.append((f"c{i}", channel, date, model, kpi, 1.0, 100.0))
    con.execute(
        "create table marts.fct_touchpoints (customer_id varchar, channel varchar, touch_date date, session_id varchar)"
    )
    con.executemany("insert into marts.fct_touchpoints values (?, ?, ?, 's')", sessions)
    con.execute(
        "create table marts.fct_attributed_conversions (customer_id varchar, channel varchar, conversion_date date, "
        "attribution_model varchar, conversion_type varchar, credit double, revenue_usd_credited double)"
    )
    con.executemany("insert into marts.fct_attributed_conversions values (?, ?, ?, ?, ?, ?, ?)", conversions)
    config = load_config()
    ctx = RunContext(con, None, config, start, NOW.date(), NOW)
    found, skips = icp_comparisons(ctx)
    assert not skips and len(found) == 8  # 2 channels × 4 tiers
    decide(found, config)
    phrase(found, None)
    accepted = {(c.subject["channel"], c.subject["tier"]) for c in found if c.status == "accepted"}
    assert ("paid_social", "A") in accepted
    assert not any(channel == "email" for channel, _ in accepted)
    best = next(c for c in found if c.key == "icp_comparison|conversion_rate|paid_social|A")
    assert best.ci_low > 1.5 and "tier A" in best.statement
    assert problems(best.insight_type, best.statement, best.effect_size, best.evidence) == []
    fresh = con.execute(best.evidence["metric_query"]["sql"]).df()  # the evidence re-runs as it stands
    stored = pd.DataFrame(best.evidence["rows"])
    assert len(fresh) == len(stored) and fresh["conversions"].sum() == pytest.approx(stored["conversions"].sum())
    no_table = duckdb.connect()
    _, why = icp_comparisons(RunContext(no_table, None, config, start, NOW.date(), NOW))
    assert why and "policy.icp_scores" in why[0].reason
