"""The MMM in the default build: a world too short for a fit skips it with the reason, and the budget split keeps
its linear model with that reason (the fit itself: test_mmm_fit.py, in `make test-heavy`)."""

from __future__ import annotations

from mos_pipelines.experiments.daily import _mmm_curves
from mos_pipelines.mmm.tables import latest_fit


def test_a_short_world_skips_the_fit_with_the_reason(world):
    with world.connect() as con:
        fit = latest_fit(con)
        skipped = con.execute("select part, reason from ops.skipped_parts where asset = 'ml/mmm_fit'").fetchall()
        posterior, why = _mmm_curves(con, ("paid_search", "display"))
        tables = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'ml'"
            ).fetchall()
        }
    assert fit is not None and fit["status"] == "skipped"
    assert "complete week(s) of outcome data; the MMM needs at least 26" in fit["reason"]
    assert skipped == [("fit", fit["reason"])]
    assert posterior is None and why.startswith("the latest MMM attempt is skipped: ")
    assert "mmm_posterior" not in tables and "mmm_channel_roi" not in tables
