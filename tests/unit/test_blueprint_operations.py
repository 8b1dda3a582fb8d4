"""Operating an approved blueprint (issue 16, points 5-8) on the small warehouse of test_blueprint_execution.py:
regression alerts (a step made 2x slower by an injected clock, or costlier), the blueprint's whole budget stopping
every spending step, progress per day with the behind-plan insight, the schedule over the horizon, and the plan
DAG page. Dagster-level: the non-blocking regression check and the blocking budget check in a real in-process run."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mos_pipelines.blueprint import alerts, execution, progress, store
from mos_pipelines.blueprint.report import dag_html, edges, layers
from mos_pipelines.configuration.blueprint import ProgressSettings
from mos_pipelines.insights.traceability import problems
from tests.unit.test_blueprint import END
from tests.unit.test_blueprint_execution import APPROVED_AT, _edit, _run, settings, world  # noqa: F401

__all__ = ["settings", "world"]


@pytest.fixture()
def copy(world, tmp_path):  # noqa: F811
    """A fresh copy of the warehouse (with the Insights Hub's own tables instead of the partial one the planner
    tests use) and of the blueprint folder."""
    path, bp_path = world
    shutil.copy(path, tmp_path / "warehouse.duckdb")
    shutil.copytree(bp_path.parent, tmp_path / "blueprints")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("drop table insights.insights")
    con.close()
    return tmp_path / "warehouse.duckdb", tmp_path / "blueprints" / bp_path.name


class Clock:
    """An injected clock: every call moves time on by ``dt`` seconds (a step's start and end are two calls)."""

    def __init__(self, start: datetime.datetime, dt: float) -> None:
        self.t, self.dt = start, dt

    def __call__(self) -> datetime.datetime:
        self.t += datetime.timedelta(seconds=self.dt)
        return self.t


def _notifications(con: duckdb.DuckDBPyConnection, kind: str = "blueprint_regression") -> list[dict]:
    cur = con.execute(
        "select * from insights.notifications where source = 'blueprint' and insight_type = ? order by created_at",
        [kind],
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# -- regression alerts -------------------------------------------------------------------------------------------


def test_a_step_made_twice_as_slow_alerts_its_owner_with_both_figures(copy, settings):  # noqa: F811
    warehouse, bp_path = copy
    bp = store.validate(bp_path)
    con = duckdb.connect(str(warehouse))
    start = datetime.datetime(2026, 4, 12, 6, tzinfo=datetime.UTC)
    for i in range(5):  # five runs where every step takes 10 s
        rows = execution.run_blueprint(con, bp, settings, f"h{i}", now=Clock(start + datetime.timedelta(days=i), 10))
    first = alerts.judge(con, rows[0], settings.alerts)
    assert first.passed and first.history == 4 and not first.regressed
    step = next(s for s in bp.steps if s.id == "crm_routing")
    late = start + datetime.timedelta(days=10)

    # exactly 2x is not "more than 2x"
    row = execution.execute_step(con, bp, step, settings, "twice", now=Clock(late, 20))
    assert alerts.check_run(con, bp, row, settings.alerts).passed
    # 2.5x slower: the alert names this run's duration, the median, and how many runs it is the median of
    row = execution.execute_step(con, bp, step, settings, "slow", now=Clock(late, 25))
    verdict = alerts.check_run(con, bp, row, settings.alerts, now=late)
    assert not verdict.passed and [f.metric for f in verdict.regressed] == ["duration_seconds"]
    slow = verdict.regressed[0]
    assert (slow.this, slow.median, slow.n) == (25.0, 10.0, 5)  # "twice" (20 s) is among the last five now
    sent = _notifications(con)
    assert len(sent) == 1 and sent[0]["reader_id"] == "ana"  # the owner: who approved the blueprint
    assert "this run 25.00 s vs median 10.00 s of the last 5 successful run(s)" in sent[0]["message"]
    assert (sent[0]["figure"], sent[0]["previous_figure"]) == (25.0, 10.0)
    assert verdict.metadata()["duration_seconds_this_run"] == 25.0
    alerts.check_run(con, bp, row, settings.alerts, now=late)  # judged again: still one notification
    assert len(_notifications(con)) == 1

    # costlier: the step's LLM calls cost $5 where it cost $0 (median floored at $1)
    con.execute(
        "insert into ops.llm_calls values ('x1', ?, 'task', 'p', 'v1', 'm', 1, 10, 10, 5.0, 10.0, 'ok', null, ?)",
        [late, f"{bp.blueprint_id}/crm_routing"],
    )
    row = execution.execute_step(con, bp, step, settings, "costly", now=Clock(late, 10))
    verdict = alerts.check_run(con, bp, row, settings.alerts, now=late + datetime.timedelta(seconds=1))
    assert [f.metric for f in verdict.regressed] == ["cost_usd"]
    assert "this run $5.00 vs median $0.00" in _notifications(con)[-1]["message"]
    con.close()


def test_too_little_history_is_not_judged(copy, settings):  # noqa: F811
    warehouse, bp_path = copy
    bp = store.validate(bp_path)
    con = duckdb.connect(str(warehouse))
    rows = execution.run_blueprint(con, bp, settings, "only", now=Clock(APPROVED_AT, 100))
    verdict = alerts.judge(con, rows[0], settings.alerts)
    assert verdict.passed and verdict.reason and "0 earlier successful run(s)" in verdict.reason
    con.close()


# -- the blueprint's budget --------------------------------------------------------------------------------------


def _inject_spend(warehouse: Path, usd: float) -> None:
    """Paid search spend in the EU after the blueprint's data day, beyond the blueprint's $20,000."""
    con = duckdb.connect(str(warehouse))
    day = END + datetime.timedelta(days=11)
    con.execute(
        "insert into marts.fct_channel_performance values (?, 'paid_search', 'EU', ?, ?, 0, 0, 1.0, 100.0)",
        [day, usd, usd],
    )
    con.close()


def test_spend_beyond_the_blueprint_budget_stops_every_spending_step(copy, settings):  # noqa: F811
    warehouse, bp_path = copy
    bp = store.validate(bp_path)
    before = {r.step_id: r for r in _run(warehouse, bp_path, settings, run_id="before")}
    assert before["nurture_email"].status == "ok" and before["nurture_email"].rows > 0

    _inject_spend(warehouse, 19_500.0)  # 1,200 + 19,500 of paid search > $20,000
    rows = {r.step_id: r for r in _run(warehouse, bp_path, settings, run_id="over")}
    spending = [s.id for s in bp.steps if s.type in execution.SPENDING_TYPES]
    assert len(spending) >= 2
    for sid in spending:
        assert rows[sid].status == "stopped", (sid, rows[sid].detail)
        assert "blueprint budget reached: $20,700" in rows[sid].detail
        assert "of the blueprint's $20,000.00 (paid_search ad spend $20,700.00" in rows[sid].detail
    assert rows["nurture_email"].rows == 0
    con = duckdb.connect(str(warehouse), read_only=True)
    listed = con.execute("select count(*) from ops.blueprint_members where step_id = 'nurture_email'").fetchall()
    pos = execution.budget_position(con, bp, settings)
    con.close()
    assert listed == [(0,)]  # no send list: nothing more goes out
    assert pos.exceeded and pos.committed_usd == pytest.approx(20_700 + pos.parts["sends"] + pos.parts["LLM"])
    assert rows["segment_audience"].status == "ok"  # steps that spend nothing go on


def test_a_send_list_is_cut_to_the_blueprint_headroom(copy, settings):  # noqa: F811
    warehouse, bp_path = copy
    _inject_spend(warehouse, 20_000.0 - 1_200.0 - 0.2)  # leaves $0.20 minus sends and LLM
    rows = {r.step_id: r for r in _run(warehouse, bp_path, settings, run_id="tight")}
    nurture = rows["nurture_email"]
    assert nurture.status == "ok" and "send list cut to" in nurture.detail
    con = duckdb.connect(str(warehouse), read_only=True)
    bp = store.validate(bp_path)
    pos = execution.budget_position(con, bp, settings)
    con.close()
    # what the list will cost fits in what was left
    assert nurture.rows * 4 * nurture.cost_per_send_usd <= pos.headroom_usd + 1e-9

    _inject_spend(warehouse, pos.headroom_usd - 0.01)  # $0.01 left: not one person's 4 sends
    con = duckdb.connect(str(warehouse))
    step = next(s for s in bp.steps if s.id == "nurture_email")
    again = execution.execute_step(con, bp, step, settings, "tighter")
    listed = con.execute("select count(*) from ops.blueprint_members where step_id = 'nurture_email'").fetchall()
    con.close()
    assert again.status == "stopped" and "send list cut to 0" in again.detail and listed == [(0,)]


# -- progress ----------------------------------------------------------------------------------------------------


def test_the_checkpoint_writes_progress_and_a_behind_plan_insight(copy, settings):  # noqa: F811
    warehouse, bp_path = copy
    bp = store.validate(bp_path)
    rows = {r.step_id: r for r in _run(warehouse, bp_path, settings, run_id="p1")}
    con = duckdb.connect(str(warehouse))
    frame = progress.read(con, bp.blueprint_id)
    assert len(frame) == 1
    p = frame.iloc[0]
    last = max(con.execute("select max(date_day) from marts.fct_channel_performance").fetchall()[0])
    assert p["day"].date() == last == END + datetime.timedelta(days=10)
    # the trajectory, recomputed: linear from the baseline to the target over the horizon
    frac = 10 / bp.objective.horizon_days
    baseline, target = bp.goal["baseline"], bp.goal["target"]
    lo, hi = bp.goal["gain_interval"]
    assert p["days_elapsed"] == 10 and p["planned"] == pytest.approx(baseline + (target - baseline) * frac, abs=1e-3)
    assert p["planned_lower"] == pytest.approx(baseline + min(lo, target - baseline) * frac, abs=1e-3)
    assert p["planned_upper"] == pytest.approx(baseline + max(hi, target - baseline) * frac, abs=1e-3)
    paying_eu = con.execute(
        "select count(*) from marts.dim_customer_features where region = 'EU' and order_count > 0"
    ).fetchall()[0][0]
    assert p["actual"] == paying_eu == rows["weekly_checkpoint"].rows
    spent = sum(r.cost_usd for sid, r in rows.items() if sid != "weekly_checkpoint")
    assert p["spent_usd"] == pytest.approx(spent, abs=0.01)
    spendable = sum(s.budget_usd for s in bp.steps if s.type != "reserve")
    assert p["planned_spend_usd"] == pytest.approx(spendable * frac, abs=0.01)
    assert (p["steps_done"], p["steps_total"]) == (len(bp.steps), len(bp.steps))
    assert p["actual"] < p["planned_lower"] and p["status"] == "behind"

    insight = con.execute(
        "select insight_id, insight_type, statement, call_to_action, effect_size, evidence, status "
        "from insights.insights"
    ).fetchall()
    assert len(insight) == 1 and insight[0][0] == p["insight_id"]
    _, kind, statement, action, effect, evidence, status = insight[0]
    evidence = json.loads(evidence)
    assert kind == "blueprint_behind_plan" and status == "accepted"
    summary = evidence["summary"][0]
    assert summary["from_channel"] == "paid_search" and summary["to_channel"] == "email"
    assert action.startswith(f"Move ${summary['move_usd']:,.2f} from paid_search")
    assert "select count(*) from marts.dim_customer_features" in evidence["metric_query"]["sql"]
    assert evidence["channel_rates"]["queries"]  # the CAC behind the call to action, with its SQL
    assert problems(kind, statement, effect, evidence) == []  # every figure of the statement is in the evidence
    owner = _notifications(con, "blueprint_behind_plan")
    assert [n["reader_id"] for n in owner] == ["ana"] and owner[0]["insight_id"] == p["insight_id"]

    # paying customers catch up: on track, no new insight; the day's row is replaced, not doubled
    con.execute("update marts.dim_customer_features set order_count = 1 where customer_id between 'c020' and 'c029'")
    con.close()
    _run(warehouse, bp_path, settings, run_id="p2")
    con = duckdb.connect(str(warehouse), read_only=True)
    again = progress.read(con, bp.blueprint_id)
    count = con.execute("select count(*) from insights.insights").fetchall()[0][0]
    con.close()
    assert len(again) == 1 and again.iloc[0]["actual"] == paying_eu + 10 and again.iloc[0]["status"] == "on_track"
    assert again.iloc[0]["steps_done"] == len(bp.steps)  # the checkpoint's earlier row is not counted twice
    assert count == 1


def test_progress_too_early_and_an_old_insights_table(world, tmp_path, settings):  # noqa: F811
    path, bp_path = world
    shutil.copy(path, tmp_path / "w.duckdb")  # keeps the planner tests' partial insights.insights
    early = settings.model_copy(update={"progress": ProgressSettings(min_days=30, behind_tolerance=0.0)})
    rows = {r.step_id: r for r in _run(tmp_path / "w.duckdb", bp_path, early)}
    assert "progress on" in rows["weekly_checkpoint"].detail and ": too_early" in rows["weekly_checkpoint"].detail
    rows = {r.step_id: r for r in _run(tmp_path / "w.duckdb", bp_path, settings)}
    check = rows["weekly_checkpoint"]
    assert check.status == "ok" and "behind-plan insight not written: insights.insights lacks column" in check.detail
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    frame = progress.read(con, bp_path.stem)
    con.close()
    assert list(frame["status"]) == ["behind"]  # the progress row is written all the same


def test_cli_progress_and_the_plan_dag_page(copy, settings, tmp_path, monkeypatch):  # noqa: F811
    from typer.testing import CliRunner

    from mos_pipelines.cli import app

    warehouse, bp_path = copy
    home = tmp_path / "home"
    home.mkdir()
    shutil.move(warehouse, home / "warehouse.duckdb")
    shutil.copytree(bp_path.parent, home / "blueprints")
    monkeypatch.setenv("MOS_HOME", str(home))
    bid = bp_path.stem
    runner = CliRunner()
    none = runner.invoke(app, ["blueprint", "progress", bid])
    assert none.exit_code != 0 and "no progress" in none.output
    _run(home / "warehouse.duckdb", bp_path, settings)
    shown = runner.invoke(app, ["blueprint", "progress", bid])
    assert shown.exit_code == 0, shown.output
    assert "behind" in shown.output and "10/91" in shown.output.replace(" ", "")

    page = tmp_path / "dag.html"
    result = runner.invoke(app, ["blueprint", "show", bid, "--html", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    bp = store.validate(bp_path)
    for s in bp.steps:
        assert f'data-step="{s.id}" data-status="ok"' in html
        assert f"{s.type} · budget ${s.budget_usd:,.2f}" in html
    for a, b in edges(bp):
        assert f'data-from="{a}" data-to="{b}"' in html
    assert html.count('class="edge"') == len(edges(bp)) == sum(len(s.depends_on) for s in bp.steps)
    assert "<script" not in html and "src=" not in html and "<link" not in html  # nothing fetched at view time
    assert layers(bp)["weekly_checkpoint"] == max(layers(bp).values())


def test_dag_page_before_any_run_and_with_a_failed_step(world, settings):  # noqa: F811
    _, bp_path = world
    bp = store.validate(bp_path)
    html = dag_html(bp)
    assert html.count('data-status="not run"') == len(bp.steps)
    failed = [{"step_id": bp.steps[0].id, "status": "failed", "cost_usd": 0.0, "finished_at": None, "detail": "x"}]
    assert f'data-step="{bp.steps[0].id}" data-status="failed"' in dag_html(bp, failed)


# -- schedule ----------------------------------------------------------------------------------------------------


def test_each_approved_blueprint_is_scheduled_daily_over_its_horizon(world):  # noqa: F811
    from mos_pipelines.defs import blueprint as wiring

    _, bp_path = world
    bp = store.validate(bp_path)
    built = wiring.build(bp_path.parent)
    assert [s.name for s in built.schedules] == [wiring.schedule_name(bp.blueprint_id)]
    schedule = built.schedules[0]
    assert schedule.cron_schedule == "0 6 * * *" and schedule.job_name == wiring.job_name(bp.blueprint_id)
    start, end = wiring.horizon_window(bp)
    assert start == APPROVED_AT.date() and (end - start).days == bp.objective.horizon_days - 1

    def tick(day: datetime.date):
        moment = datetime.datetime.combine(day, datetime.time(6), tzinfo=datetime.UTC)
        with dg.build_schedule_context(scheduled_execution_time=moment) as context:
            return list(schedule.evaluate_tick(context).run_requests or []), schedule.evaluate_tick(context)

    before, data = tick(start - datetime.timedelta(days=1))
    assert before == [] and "starts on" in (data.skip_message or "")
    for day in (start, end):
        requests, _ = tick(day)
        assert len(requests) == 1 and requests[0].tags[wiring.TAG] == bp.blueprint_id
    after, data = tick(end + datetime.timedelta(days=1))
    assert after == [] and "horizon ended" in (data.skip_message or "")


# -- Dagster -----------------------------------------------------------------------------------------------------


def _defs(warehouse: Path, bp_path: Path):
    from mos_pipelines.defs import blueprint as wiring
    from mos_pipelines.defs.resources import MosHome

    built = wiring.build(bp_path.parent)
    return dg.Definitions(
        assets=built.assets,
        jobs=built.jobs,
        resources={"mos": MosHome(mos_home=str(warehouse.parent))},
        executor=dg.in_process_executor,
    )


def _checks(result, name: str) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.check_name == name}


def test_dagster_regression_check_fails_without_blocking(copy, settings):  # noqa: F811
    from mos_pipelines.blueprint import ledger
    from mos_pipelines.defs import blueprint as wiring

    warehouse, bp_path = copy
    bp = store.validate(bp_path)
    con = duckdb.connect(str(warehouse))
    ledger.ensure(con)
    for i in range(5):  # five earlier successful runs of the paid search step at $100
        start = APPROVED_AT + datetime.timedelta(days=i)
        con.execute(
            "insert into ops.step_runs values (?, 1, 'h', 'channel_budget_paid_search', 'channel_budget', ?, ?, ?, "
            "'ok', 1, 1000, 0, 0, 0, 0, 0, null, 0, 100, 100, 'history')",
            [bp.blueprint_id, f"old{i}", start, start + datetime.timedelta(seconds=1)],
        )
    con.close()
    result = (
        _defs(warehouse, bp_path)
        .resolve_job_def(wiring.job_name(bp.blueprint_id))
        .execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    )
    assert result.success  # a warning check: the run goes on
    checks = _checks(result, wiring.REGRESSION_CHECK)
    assert set(checks) == {s.id for s in bp.steps}
    paid = checks["channel_budget_paid_search"]
    assert not paid.passed and paid.severity == dg.AssetCheckSeverity.WARN
    meta = {k: v.value for k, v in paid.metadata.items()}
    assert (meta["cost_usd_this_run"], meta["cost_usd_median"], meta["history_runs"]) == (1200.0, 100.0, 5)
    assert all(c.passed for sid, c in checks.items() if sid != "channel_budget_paid_search")
    checkpoint = wiring.step_key(bp.blueprint_id, "weekly_checkpoint")
    assert result.asset_materializations_for_node(checkpoint.to_python_identifier())  # downstream ran
    budget = _checks(result, wiring.BUDGET_CHECK)
    assert set(budget) == {"channel_budget_paid_search", "nurture_email"} and all(c.passed for c in budget.values())
    con = duckdb.connect(str(warehouse), read_only=True)
    sent = _notifications(con)
    con.close()
    assert [n["subject"] for n in sent if n["insight_type"] == "blueprint_regression"] == [
        f"{bp.blueprint_id}/channel_budget_paid_search"
    ]


def test_dagster_budget_check_blocks_what_comes_after(copy, settings):  # noqa: F811
    from mos_pipelines.defs import blueprint as wiring

    warehouse, bp_path = copy
    bp = store.validate(bp_path)
    _inject_spend(warehouse, 19_500.0)
    result = (
        _defs(warehouse, bp_path)
        .resolve_job_def(wiring.job_name(bp.blueprint_id))
        .execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    )
    budget = _checks(result, wiring.BUDGET_CHECK)
    assert budget and not any(c.passed for c in budget.values())
    assert all(c.severity == dg.AssetCheckSeverity.ERROR for c in budget.values())
    meta = {k: v.value for k, v in next(iter(budget.values())).metadata.items()}
    assert meta["blueprint_budget_usd"] == 20000.0 and meta["committed_usd"] > 20_700
    assert not result.success
    checkpoint = wiring.step_key(bp.blueprint_id, "weekly_checkpoint")
    assert not result.asset_materializations_for_node(checkpoint.to_python_identifier())  # blocked
    con = duckdb.connect(str(warehouse), read_only=True)
    stopped = dict(
        con.execute(
            "select step_id, status from ops.step_runs where step_type in ('channel_budget', 'nurture_email')"
        ).fetchall()
    )
    con.close()
    assert set(stopped.values()) == {"stopped"}


def test_cli_run_over_budget_says_why(copy, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mos_pipelines.cli import app

    warehouse, bp_path = copy
    _inject_spend(warehouse, 19_500.0)
    home = tmp_path / "home"
    home.mkdir()
    shutil.move(warehouse, home / "warehouse.duckdb")
    shutil.copytree(bp_path.parent, home / "blueprints")
    monkeypatch.setenv("MOS_HOME", str(home))
    ran = CliRunner().invoke(app, ["blueprint", "run", bp_path.stem])
    assert ran.exit_code == 1
    out = " ".join(ran.output.split())
    assert "the blueprint's budget is reached ($20,700.07 committed of the blueprint's $20,000.00" in out
    assert "blueprint budget reached" in out  # the stopped steps' detail in the status table


def test_web_app_blueprints_page_shows_the_progress_rows(copy, settings, tmp_path, monkeypatch):  # noqa: F811
    """The web app's /blueprints shows what `mos blueprint progress` prints (tests/unit/test_web.py has the rest)."""
    from fastapi.testclient import TestClient

    from mos_pipelines.settings import Settings
    from mos_pipelines.web.app import WebSettings, create_app

    warehouse, bp_path = copy
    home = tmp_path / "home"
    home.mkdir()
    shutil.move(warehouse, home / "warehouse.duckdb")
    shutil.copytree(bp_path.parent, home / "blueprints")
    _run(home / "warehouse.duckdb", bp_path, settings)
    monkeypatch.setenv("MOS_TOKEN_ANALYST", "web-analyst")
    client = TestClient(create_app(Settings(mos_home=home), WebSettings(secret=b"s" * 32)))
    page = client.get("/blueprints", headers={"authorization": "Bearer web-analyst"})
    assert page.status_code == 200
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = progress.read(con, bp_path.stem)
    assert len(rows) > 0
    card = page.text[page.text.index(f'id="blueprint-{bp_path.stem}"') :]
    assert card.count("<tr><td>") == len(rows)  # one table row per day of progress
    last = rows.iloc[-1]
    assert f"{last['days_elapsed']}/{last['horizon_days']}" in card and last["status"] in card
