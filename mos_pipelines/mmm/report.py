"""The MMM's model card (Markdown) and the lift tests read from the holdout mart."""

from __future__ import annotations

import numpy as np

from mos_pipelines.mmm.data import WeeklyData, order_conversion_type
from mos_pipelines.mmm.model import FitResult, LiftTest
from mos_pipelines.warehouse import table_exists

SAMPLER_NAMES = {"nutpie": "nutpie (low-rank mass matrix)", "pymc": "PyMC"}


def model_card(result: FitResult) -> str:
    d, s, g = result.data, result.settings, result.diagnostics
    pct = round(100 * s.interval)
    problems = result.convergence_problems()
    lines = [
        "## Marketing mix model",
        f"- data: {d.shape}, {d.weeks[0]} to {d.weeks[-1]}; outcome `{d.outcome_name}` per week and region; "
        "spend = `cost_usd` of `fct_channel_performance`",
        f"- model: per region baseline + trend + yearly Fourier (order {s.fourier_order}); per channel geometric "
        "adstock (8 weeks, normalised) → logistic saturation → β, shared by the regions",
        f"- priors (scaled units): α ~ Beta{s.alpha_prior}, λ ~ Gamma(shape {s.lam_prior[0]:g}, rate "
        f"{s.lam_prior[1]:g}), β ~ HalfNormal({s.beta_sigma:g}); lift tests: {len(result.lift_tests)}"
        + "".join(
            f"\n  - {t.channel}: {t.lift:,.0f} ± {t.lift_sd:,.0f} for ${t.weekly_spend_usd:,.0f}/week × "
            f"{t.weeks:g} weeks ({t.source})"
            for t in result.lift_tests
        ),
        f"- sampler: {SAMPLER_NAMES.get(s.sampler, s.sampler)} NUTS, {s.chains} chains × {s.draws} draws after {s.tune} tuning, target_accept "
        f"{s.target_accept}, seed {s.seed}; {result.fit_seconds:.0f} s",
        f"- convergence: max r-hat {g['max_rhat']:.3f} (gate {s.max_rhat}), min bulk ESS {g['min_ess_bulk']:.0f} "
        f"(gate {s.min_ess:g}), divergences {g['divergences']:.0f} — "
        + ("**not converged: " + "; ".join(problems) + "**" if problems else "converged"),
        "",
        f"| channel | spend $ | contribution $ [{pct} %] | ROI [{pct} %] | marginal ROI [{pct} %] |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in result.channel_roi.itertuples():
        lines.append(
            f"| {r.channel} | {r.spend_usd:,.0f} | {r.contribution_mean:,.0f} [{r.contribution_lower:,.0f}–"
            f"{r.contribution_upper:,.0f}] | {r.roi_mean:.2f} [{r.roi_lower:.2f}–{r.roi_upper:.2f}] | "
            f"{r.marginal_roi_mean:.2f} [{r.marginal_roi_lower:.2f}–{r.marginal_roi_upper:.2f}] |"
        )
    if d.left_out:
        lines += ["", "Left out:"] + [f"- {part}: {reason}" for part, reason in d.left_out]
    lines += [
        "",
        "ROI = incremental outcome per dollar of spend over the window (subtract 1 for profit on revenue); marginal "
        "ROI = the outcome of the next dollar (all weeks' spend +1 %). Limits: correlation, not experiment — "
        "channels whose spend moves together cannot be told apart without lift tests; a curve is only known "
        "around the spend levels observed.",
    ]
    return "\n".join(lines)


def holdout_lift_tests(con, data: WeeklyData) -> tuple[list[LiftTest], str]:
    """Lift from the persistent holdouts (``fct_experiment_holdout``), in the MMM's outcome, for a channel the
    model has: (treated conversion rate − holdout rate) × treated units × the mean outcome per conversion, over
    the experiment's window, against the experiment campaign's cost in ``fct_channel_performance`` in that window.
    Returns the tests and a note (why there are none)."""
    if not table_exists(con, "marts", "fct_experiment_holdout"):
        return [], "no marts.fct_experiment_holdout"
    arms = con.execute(
        """select experiment_id, is_holdout, sum(observed_units) as units, sum(converted_units) as converted,
            max(window_days) as window_days
        from marts.fct_experiment_holdout group by experiment_id, is_holdout"""
    ).df()
    if arms.empty:
        return [], "no experiment with a holdout yet"
    cost = con.execute(
        """select campaign_id, channel, sum(cost_usd) as cost_usd, count(distinct date_day) as days
        from marts.fct_channel_performance where cost_usd > 0 group by campaign_id, channel"""
    ).df()
    per_conversion = 1.0 if data.outcome_name == "conversions" else _revenue_per_order(con)
    tests, notes = [], []
    for experiment, group in arms.groupby("experiment_id"):
        treated, held = group[~group["is_holdout"]], group[group["is_holdout"]]
        if treated.empty or held.empty or held["units"].sum() < 30 or treated["units"].sum() < 30:
            notes.append(f"{experiment}: fewer than 30 observed units in an arm")
            continue
        n1, k1 = float(treated["units"].sum()), float(treated["converted"].sum())
        n0, k0 = float(held["units"].sum()), float(held["converted"].sum())
        p1, p0 = k1 / n1, k0 / n0
        sd = np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0) * n1
        spent = cost[cost["campaign_id"] == experiment]
        if spent.empty or spent["channel"].iloc[0] not in data.channels:
            notes.append(f"{experiment}: no cost on a channel the MMM has")
            continue
        weeks = max(1.0, float(spent["days"].sum()) / 7)
        tests.append(
            LiftTest(
                str(spent["channel"].iloc[0]),
                float(spent["cost_usd"].sum()) / weeks,
                weeks,
                (p1 - p0) * n1 * per_conversion,
                max(sd * per_conversion, 1e-6),
                f"holdout of {experiment}",
            )
        )
    return tests, "; ".join(notes)


def _revenue_per_order(con) -> float:
    value = con.execute(
        "select avg(coalesce(revenue_usd, 0)) from marts.fct_conversions where conversion_type = ?",
        [order_conversion_type(con)],
    ).fetchall()[0][0]
    return float(value or 0.0)
