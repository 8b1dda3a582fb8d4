"""The goal under the marketing mix model's curves: each step of the budget to the channel whose next dollar buys
most (diminishing returns), linear where the model has no curve, and exactly today's greedy without a model."""

from __future__ import annotations

import pytest

from mos_pipelines.blueprint.context import Fact
from mos_pipelines.blueprint.goal import (
    ChannelRate,
    allocate,
    effective_spend,
    expected_gain,
    relative_response,
    with_response_curves,
)
from mos_pipelines.configuration import load_blueprint

HORIZON = 30


def _rate(channel: str, per_dollar: float, daily: float) -> ChannelRate:
    return ChannelRate(channel, daily * 30, per_dollar * daily * 30, per_dollar, per_dollar, per_dollar, daily)


def _saturating(k: float) -> list[list[float]]:
    """Relative outcome of a logistic-like curve at multiples 0..2 of today's spend (1 at 1×)."""
    import math

    f = lambda m: (1 - math.exp(-k * m)) / (1 + math.exp(-k * m))  # noqa: E731
    return [[m / 10, f(m / 10) / f(1.0)] for m in range(21)]


def test_the_relative_response_interpolates_and_continues_at_its_last_slope():
    points = ((0.0, 0.0), (1.0, 1.0), (2.0, 1.5))
    assert relative_response(points, 0.5) == pytest.approx(0.5)
    assert relative_response(points, 1.5) == pytest.approx(1.25)
    assert relative_response(points, 3.0) == pytest.approx(2.0)  # last slope 0.5 continued
    rate = _rate("search", 0.01, 100.0)
    assert effective_spend(rate, 6000.0, HORIZON) == 6000.0  # no curve: linear
    curved = ChannelRate(**{**rate.__dict__, "response": points})
    assert effective_spend(curved, 3000.0, HORIZON) == pytest.approx(3000.0)  # today's spend: the measured rate
    assert effective_spend(curved, 6000.0, HORIZON) == pytest.approx(4500.0)  # 2x spend buys 1.5x


def test_curves_spread_the_budget_where_the_linear_goal_pours_it_into_the_best_channel():
    settings = load_blueprint()
    rates = [_rate("search", 0.012, 100.0), _rate("paid_social", 0.010, 100.0)]
    budget = 6000.0
    linear = {r.channel: s for r, s, _ in allocate(rates, budget, HORIZON, settings)}
    fact = Fact(
        "response_curves",
        {"fit_id": "fit1", "relative_response": {"search": _saturating(3.0), "paid_social": _saturating(0.5)}},
    )
    curved_rates, fit = with_response_curves(rates, fact)
    assert fit == "fit1" and all(r.response is not None for r in curved_rates)
    plan = allocate(curved_rates, budget, HORIZON, settings)
    curved = {r.channel: s for r, s, _ in plan}
    assert linear["search"] > curved["search"] and curved["paid_social"] > linear["paid_social"]
    assert sum(curved.values()) == pytest.approx(budget, abs=0.05)
    assert all(s <= cap + 0.01 for _, s, cap in plan)  # within each channel's capacity
    # marginal returns are (about) equal at the optimum: one more step on either channel buys about the same
    step = budget / 400

    def marginal(r: ChannelRate, s: float) -> float:
        return r.per_dollar * (effective_spend(r, s + step, HORIZON) - effective_spend(r, s, HORIZON)) / step

    m = {r.channel: marginal(r, s) for r, s, _ in plan}
    assert m["search"] == pytest.approx(m["paid_social"], rel=0.15)
    # and the curved split buys more under the curves than the linear split does
    by_channel = {r.channel: r for r in curved_rates}
    under_curves = lambda split: sum(  # noqa: E731
        by_channel[c].per_dollar * effective_spend(by_channel[c], s, HORIZON) for c, s in split.items()
    )
    assert under_curves(curved) > under_curves(linear)
    assert expected_gain(curved_rates, budget, HORIZON, settings) == pytest.approx(under_curves(curved), rel=1e-6)


def test_without_a_converged_model_the_rates_stay_linear():
    rates = [_rate("search", 0.012, 100.0)]
    missing = Fact("response_curves", available=False, reason="no converged marketing mix model (no fit yet)")
    assert with_response_curves(rates, missing) == (rates, None)
    assert with_response_curves(rates, None) == (rates, None)


def test_the_provider_reads_the_curves_of_a_converged_fit_only():
    import duckdb

    from mos_pipelines.blueprint.context import PROVIDERS, Context

    con = duckdb.connect(":memory:")
    ctx = Context(con, load_blueprint(), None)
    assert "ml.mmm_fits is not in the warehouse" in PROVIDERS["response_curves"](ctx).reason
    con.execute("create schema ml")
    con.execute(
        "create table ml.mmm_fits as select * from (values ('f1', 'not_converged', 'r-hat 1.2', "
        "timestamp '2026-12-07 01:00')) t(fit_id, status, reason, fitted_at)"
    )
    con.execute(
        "create table ml.mmm_response_curves as select * from (values ('search', 0.0, 0.0), ('search', 1.0, 40.0), "
        "('search', 2.0, 60.0)) t(channel, spend_multiple, weekly_contribution_mean)"
    )
    refused = PROVIDERS["response_curves"](ctx)
    assert not refused.available and "not_converged: r-hat 1.2" in refused.reason
    con.execute("insert into ml.mmm_fits values ('f2', 'fitted', null, timestamp '2026-12-07 02:00')")
    fact = PROVIDERS["response_curves"](ctx)
    assert fact.available and fact.value == {
        "fit_id": "f2",
        "relative_response": {"search": [[0.0, 0.0], [1.0, 1.0], [2.0, 1.5]]},
    }


def test_a_channel_the_model_did_not_size_stays_linear_and_is_named():
    """The planner's curves pass the budget's gate too: a channel whose ROI interval spans more than 20× (the data
    did not size it; its curve is the prior's) is left out of the curves and named; none sized: no curves at all."""
    import duckdb

    from mos_pipelines.blueprint.context import Context, Missing, Params, response_curves

    con = duckdb.connect()
    con.execute("create schema ml")
    con.execute(
        "create table ml.mmm_fits as select 'fit1' as fit_id, 'fitted' as status, null as reason, now() as fitted_at"
    )
    con.execute(
        "create table ml.mmm_response_curves as select * from (values ('search', 0.0, 0.0), ('search', 1.0, 10.0), "
        "('search', 2.0, 15.0), ('email', 0.0, 0.0), ('email', 1.0, 4.0), ('email', 2.0, 6.0)) "
        "as t(channel, spend_multiple, weekly_contribution_mean)"
    )
    con.execute(
        "create table ml.mmm_channel_roi as select * from (values ('search', 1.2, 2.4), ('email', 5.0, 400.0)) "
        "as t(channel, roi_lower, roi_upper)"
    )
    ctx = Context(con, load_blueprint(), None)
    value = response_curves(ctx, Params(), Fact("response_curves"))
    assert set(value["relative_response"]) == {"search"}
    assert value["linear_channels"] == {"email": "ROI 5.00–400.00 (80×)"}
    con.execute("update ml.mmm_channel_roi set roi_lower = 0.01 where channel = 'search'")
    with pytest.raises(Missing, match="sized no channel"):
        response_curves(ctx, Params(), Fact("response_curves"))
