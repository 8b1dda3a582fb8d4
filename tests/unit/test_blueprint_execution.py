"""Running an approved blueprint on a small warehouse built here (tests/unit/test_blueprint.py's, plus ten days of
data after the blueprint's data day, LLM calls and email deliveries): only approved files run, the $ ledger equals
an independent recomputation from ops.llm_calls, the activation ledger and the spend, budgets stop a step, a
failed step resumes without redoing the others, the same warehouse gives the same rows, and the Dagster job."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import yaml

from mos_pipelines.activation.ledger import DDL as ACTIVATION_DDL
from mos_pipelines.blueprint import execution, store
from mos_pipelines.configuration import load_blueprint
from mos_pipelines.llm.ledger import DDL as LLM_DDL
from tests.unit.test_blueprint import END, build_warehouse

APPROVED_AT = datetime.datetime(2026, 4, 1, 8, 0, tzinfo=datetime.UTC)
AFTER = [END + datetime.timedelta(days=d) for d in range(1, 11)]  # ten days after the blueprint's data day
OBJECTIVE = "Expand paying customers in the EU"


@pytest.fixture(scope="module")
def settings():
    return load_blueprint()


def _add_after_data(path: Path, bid: str) -> None:
    """Ten more days of channel data, LLM calls tagged with step contexts, and email deliveries."""
    con = duckdb.connect(str(path))
    perf = []
    for day in AFTER:
        perf.append((day, "paid_search", "EU", 120.0, 120.0, 0, 0.5, 1.0, 150.0))
        perf.append((day, "paid_search", "NA", 80.0, 80.0, 0, 1.0, 2.0, 200.0))  # outside the segment
        perf.append((day, "paid_social", "EU", 30.0, 30.0, 0, 0.1, 0.5, 40.0))
        perf.append((day, "email", "EU", 0.0, 3.0, 500, 0.25, 1.0, 60.0))
    con.executemany("insert into marts.fct_channel_performance values (?,?,?,?,?,?,?,?,?)", perf)
    con.execute(LLM_DDL)
    calls = [
        (f"{bid}/weekly_checkpoint", 1200, 300, 0.0125, "ok"),
        (f"{bid}/weekly_checkpoint", 900, 0, 0.004, "rejected"),  # a rejected answer was paid for
        (f"{bid}/nurture_email", 4000, 1500, 0.031, "ok"),
        ("bp_other/nurture_email", 5000, 5000, 9.0, "ok"),  # another blueprint's
        ("insights", 100, 100, 1.0, "ok"),
    ]
    con.executemany(
        "insert into ops.llm_calls values (?, ?, 'task', 'p', 'v1', 'm', 1, ?, ?, ?, 10.0, ?, null, ?)",
        [
            (f"call{i}", datetime.datetime(2026, 4, 2, tzinfo=datetime.UTC), t_in, t_out, cost, outcome, context)
            for i, (context, t_in, t_out, cost, outcome) in enumerate(calls)
        ],
    )
    con.execute(ACTIVATION_DDL)
    # EU customers c000..c039; not paying: c020..c039 (the segment audience)
    ledger_rows, attempts = [], []
    at = datetime.datetime(2026, 4, 3, 9)
    for i, (cid, channel, dest, status, when) in enumerate(
        [
            ("c021", "email", "sync_email__nurture", "acknowledged", at),
            ("c022", "email", "sync_email__nurture", "acknowledged", at),
            ("c023", "email", "sync_email__nurture", "acknowledged", at),
            ("c023", "email", "sync_email__nurture", "acknowledged", at + datetime.timedelta(days=2)),
            ("c024", "email", "sync_email__nurture", "failed", at),  # not delivered
            ("c025", "email", "sync_email__nurture", "acknowledged", datetime.datetime(2026, 3, 20)),  # before
            ("c005", "email", "sync_email__nurture", "acknowledged", at),  # paying: not in the audience
            ("c045", "email", "sync_email__nurture", "acknowledged", at),  # NA
            ("c026", "google_customer_match", "sync_ads__audience_members", "acknowledged", at),  # not email
        ]
    ):
        key = f"k_{cid}_{dest}"
        ledger_rows.append((dest, key, cid, at))
        attempts.append((f"run{i}", dest, channel, key, status, when))
    con.executemany(
        "insert or ignore into ops.activation_ledger (destination, record_key, customer_id, operation, payload_hash, "
        "idempotency_key, status, attempts, change_seq, is_present, first_seen_at, updated_at) "
        "values (?, ?, ?, 'upsert', 'h', 'i', 'acknowledged', 1, 1, true, ?, ?)",
        [(d, k, c, t, t) for d, k, c, t in ledger_rows],
    )
    con.executemany(
        "insert into ops.activation_attempts (run_id, destination, channel, record_key, operation, attempt, status, "
        "attempted_at) values (?, ?, ?, ?, 'upsert', 1, ?, ?)",
        attempts,
    )
    con.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory, settings):
    """A warehouse, and an approved blueprint drafted on it before the ten days after were added."""
    root = tmp_path_factory.mktemp("bp_exec")
    path = root / "warehouse.duckdb"
    build_warehouse(path)
    con = duckdb.connect(str(path), read_only=True)
    d = store.draft(con, settings, OBJECTIVE, budget_usd=20000, months=3)
    con.close()
    blueprints = root / "blueprints"
    bp_path, _ = store.write(blueprints, d)
    store.approve(bp_path, by="ana", at=APPROVED_AT)
    _add_after_data(path, d.blueprint.blueprint_id)
    return path, bp_path


@pytest.fixture()
def copy(world, tmp_path):
    """A fresh copy of the warehouse and the blueprint folder for a test that runs steps."""
    path, bp_path = world
    shutil.copy(path, tmp_path / "warehouse.duckdb")
    shutil.copytree(bp_path.parent, tmp_path / "blueprints")
    return tmp_path / "warehouse.duckdb", tmp_path / "blueprints" / bp_path.name


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _run(warehouse: Path, bp_path: Path, settings, run_id: str = "r1", resume: bool = False):
    bp = store.validate(bp_path)
    con = duckdb.connect(str(warehouse))
    try:
        return execution.run_blueprint(con, bp, settings, run_id, resume=resume)
    finally:
        con.close()


def test_only_an_approved_file_runs(copy, settings, tmp_path):
    _, bp_path = copy
    bp = store.validate(bp_path)
    execution.runnable(bp)  # approved as it stands
    _edit(bp_path, lambda data: data["steps"][0]["params"].update(where="true"))
    with pytest.raises(execution.NotRunnable, match="edited after approval.*approve it again"):
        execution.runnable(store.validate(bp_path))
    draft = bp.model_copy(update={"approval": None})
    with pytest.raises(execution.NotRunnable, match="is a draft"):
        execution.runnable(draft)


def test_cost_ledger_equals_an_independent_recomputation(copy, settings):
    warehouse, bp_path = copy
    bp = store.validate(bp_path)
    rows = {r.step_id: r for r in _run(warehouse, bp_path, settings)}
    assert set(rows) == {s.id for s in bp.steps}
    assert {r.status for r in rows.values()} == {"ok"}, {r.step_id: r.detail for r in rows.values()}

    con = duckdb.connect(str(warehouse), read_only=True)
    calls = con.execute("select context, sum(tokens_in), sum(tokens_out), sum(cost_usd) from ops.llm_calls group by 1")
    llm = {c: (int(i), int(o), float(usd)) for c, i, o, usd in calls.fetchall()}
    perf = con.execute("select * from marts.fct_channel_performance").df()
    features = con.execute("select * from marts.dim_customer_features").df()
    attempts = con.execute(
        "select a.*, l.customer_id from ops.activation_attempts a "
        "left join ops.activation_ledger l using (destination, record_key)"
    ).df()
    stored = con.execute("select * from ops.step_runs").df()
    con.close()

    # the segment audience: EU customers not yet paying (c020..c039)
    audience = set(features[(features.region == "EU") & (features.order_count == 0)].customer_id)
    assert audience == {f"c{i:03d}" for i in range(20, 40)}
    assert rows["segment_audience"].rows == 20
    assert rows["lookalike_pool"].rows == 20  # scored c020..c059, in the EU: c020..c039
    # sends: acknowledged email upserts to the audience since the approval (c021, c022, c023 twice)
    sent = attempts[
        (attempts.channel == "email")
        & (attempts.status == "acknowledged")
        & (attempts.attempted_at >= pd.Timestamp(APPROVED_AT.replace(tzinfo=None)))
        & attempts.customer_id.isin(audience)
    ]
    assert len(sent) == 4
    last = perf.date_day.max()
    window = perf[(perf.channel == "email") & (perf.date_day > last - pd.Timedelta(days=56))]
    cps = window.cost_usd.sum() / window.sends.sum()
    # ad spend: paid_search in the EU after the blueprint's data day, capped at the step's budget
    spend = perf[(perf.channel == "paid_search") & (perf.region == "EU") & (perf.date_day > pd.Timestamp(END))]
    budget = next(s.budget_usd for s in bp.steps if s.id == "channel_budget_paid_search")
    assert spend.spend_usd.sum() == pytest.approx(1200.0) and budget > 1200

    for sid, row in rows.items():
        tokens_in, tokens_out, usd = llm.get(f"{bp.blueprint_id}/{sid}", (0, 0, 0.0))
        sends = len(sent) if sid == "nurture_email" else 0
        ad = 0.0
        if sid == "channel_budget_paid_search":
            ad = min(spend.spend_usd.sum(), budget)
        elif sid == "channel_budget_paid_social":
            social = perf[(perf.channel == "paid_social") & (perf.region == "EU") & (perf.date_day > pd.Timestamp(END))]
            ad = min(social.spend_usd.sum(), next(s.budget_usd for s in bp.steps if s.id == sid))
        assert (row.llm_tokens_in, row.llm_tokens_out) == (tokens_in, tokens_out), sid
        assert row.llm_cost_usd == pytest.approx(usd), sid
        assert row.sends == sends, sid
        assert row.send_cost_usd == pytest.approx(sends * cps), sid
        assert row.ad_spend_usd == pytest.approx(ad), sid
        assert row.cost_usd == pytest.approx(usd + sends * cps + ad), sid
    assert rows["weekly_checkpoint"].llm_cost_usd == pytest.approx(0.0165)  # the rejected call counts
    assert rows["nurture_email"].cost_per_send_usd == pytest.approx(cps)
    # what status reads back is what was appended
    assert len(stored) == len(rows)
    assert stored.cost_usd.sum() == pytest.approx(sum(r.cost_usd for r in rows.values()))


def test_same_warehouse_gives_the_same_rows(world, settings, tmp_path):
    path, bp_path = world
    got = []
    for name in ("a", "b"):
        shutil.copy(path, tmp_path / f"{name}.duckdb")
        rows = _run(tmp_path / f"{name}.duckdb", bp_path, settings, run_id=f"run-{name}")
        got.append(
            [{k: v for k, v in r.metadata().items() if k not in ("run_id", "started_at", "finished_at")} for r in rows]
        )
    assert got[0] == got[1]
    con_a, con_b = (duckdb.connect(str(tmp_path / f"{n}.duckdb"), read_only=True) for n in ("a", "b"))
    members = "select * from ops.blueprint_members order by all"
    assert con_a.execute(members).fetchall() == con_b.execute(members).fetchall()
    con_a.close()
    con_b.close()


def test_a_spending_step_stops_at_its_budget(copy, settings):
    warehouse, bp_path = copy

    def shrink(data):
        steps = {s["id"]: s for s in data["steps"]}
        paid, nurture = steps["channel_budget_paid_search"], steps["nurture_email"]
        freed = paid["budget_usd"] - 500.0 + nurture["budget_usd"] - 0.02
        paid["budget_usd"], nurture["budget_usd"] = 500.0, 0.02
        if "reserve" in steps:
            steps["reserve"]["budget_usd"] = round(steps["reserve"]["budget_usd"] + freed, 2)
        else:
            data["steps"].append(
                {
                    "id": "reserve",
                    "type": "reserve",
                    "title": "held",
                    "budget_usd": round(freed, 2),
                    "params": {"reason": "test"},
                }
            )

    _edit(bp_path, shrink)
    store.approve(bp_path, by="ana", at=APPROVED_AT)
    rows = {r.step_id: r for r in _run(warehouse, bp_path, settings)}
    paid = rows["channel_budget_paid_search"]
    assert paid.status == "stopped" and paid.ad_spend_usd == pytest.approx(500.0)
    assert "budget reached" in paid.detail and "$700.00 spent beyond it" in paid.detail
    nurture = rows["nurture_email"]  # 4 sends already cost more than $0.02
    assert nurture.sends == 4 and nurture.status == "stopped" and nurture.rows == 0
    assert "no further sends" in nurture.detail
    # the ledger shows what was really spent on sends, over the budget, and says so
    assert "over the step's budget" in nurture.detail


def test_the_send_list_is_what_the_remaining_budget_pays_for(copy, settings):
    warehouse, bp_path = copy

    def set_nurture(data):
        steps = {s["id"]: s for s in data["steps"]}
        old = steps["nurture_email"]["budget_usd"]
        steps["nurture_email"]["budget_usd"] = 0.1
        target = steps.get("reserve") or steps["channel_budget_paid_search"]
        target["budget_usd"] = round(target["budget_usd"] + old - 0.1, 2)

    _edit(bp_path, set_nurture)
    store.approve(bp_path, by="ana", at=APPROVED_AT)
    rows = {r.step_id: r for r in _run(warehouse, bp_path, settings)}
    nurture = rows["nurture_email"]
    cps = nurture.cost_per_send_usd
    con = duckdb.connect(str(warehouse), read_only=True)
    emailable = con.execute(
        "select count(*) from marts.dim_customer_features where region = 'EU' and order_count = 0 "
        "and is_email_marketing_consented"
    ).fetchall()[0][0]
    listed = con.execute("select count(*) from ops.blueprint_members where step_id = 'nurture_email'").fetchall()[0][0]
    con.close()
    # the budget pays for the sends made (4), the step's LLM calls ($0.031), then 4 sends per listed person
    affordable = int((0.1 - 4 * cps - 0.031) // (cps * 4))
    assert affordable >= 1 and nurture.status == "ok" and nurture.rows == listed == min(emailable, affordable)
    assert listed * 4 * cps + nurture.cost_usd <= 0.1 + 1e-9


def test_a_failed_step_resumes_without_redoing_the_others(copy, settings):
    warehouse, bp_path = copy

    def edit(data):
        data["steps"][0]["params"]["where"] = "region = 'EU' and not is_vip"
        paid = next(s for s in data["steps"] if s["id"] == "channel_budget_paid_search")
        paid["budget_usd"] = round(paid["budget_usd"] - 100, 2)
        data["steps"].append(  # a step that depends on nothing: it runs although the audience fails
            {"id": "reserve", "type": "reserve", "title": "held", "budget_usd": 100.0, "params": {"reason": "test"}}
        )

    _edit(bp_path, edit)
    bp = store.approve(bp_path, by="ana", at=APPROVED_AT)
    first = {r.step_id: r for r in _run(warehouse, bp_path, settings, run_id="first")}
    assert first["segment_audience"].status == "failed" and "is_vip" in first["segment_audience"].detail
    dependents = {s.id for s in bp.steps if "segment_audience" in [u.id for u in execution.upstream(bp, s)]}
    assert dependents and all(first[s].status == "skipped" for s in dependents)
    assert "after failed step segment_audience" in first["lookalike_pool"].detail
    independent = {s.id for s in bp.steps} - dependents - {"segment_audience"}
    assert independent == {"reserve"} and first["reserve"].status == "ok"

    con = duckdb.connect(str(warehouse))
    assert execution.pending_steps(con, bp) == [s.id for s in execution.order(bp) if s.id not in independent]
    con.execute("alter table marts.dim_customer_features add column is_vip boolean default false")
    con.close()
    second = {r.step_id: r for r in _run(warehouse, bp_path, settings, run_id="second", resume=True)}
    assert set(second) == dependents | {"segment_audience"}  # the finished steps are not redone
    assert all(r.status == "ok" for r in second.values())
    con = duckdb.connect(str(warehouse), read_only=True)
    per_step = dict(con.execute("select step_id, count(*) from ops.step_runs group by 1").fetchall())
    assert execution.pending_steps(con, bp) == []
    con.close()
    assert all(per_step[s] == 1 for s in independent) and per_step["segment_audience"] == 2


def test_a_missing_table_skips_the_step_and_the_run_goes_on(copy, settings):
    warehouse, bp_path = copy
    con = duckdb.connect(str(warehouse))
    con.execute("drop table ml.lookalike_scores")
    con.close()
    rows = {r.step_id: r for r in _run(warehouse, bp_path, settings)}
    assert rows["lookalike_pool"].status == "skipped" and "ml.lookalike_scores is not in the warehouse" in (
        rows["lookalike_pool"].detail or ""
    )
    assert rows["ad_audience_sync"].status == "ok" and rows["weekly_checkpoint"].status == "ok"


# -- Dagster -----------------------------------------------------------------------------------------------------


def test_approved_blueprints_become_jobs_and_run_in_dagster(copy, settings, tmp_path):
    from mos_pipelines.defs import blueprint as wiring
    from mos_pipelines.defs.resources import MosHome
    from mos_pipelines.defs.schedules import FULL_BUILD_SELECTION

    warehouse, bp_path = copy
    folder = bp_path.parent
    bp = store.validate(bp_path)
    draft = folder / "bp_000000000000.yaml"
    draft.write_text(bp_path.read_text().split("approval:")[0])
    (folder / "bp_111111111111.yaml").write_text("steps: [unclosed\n")
    assert wiring.build(tmp_path / "nothing").jobs == []  # no folder: no job, no error

    built = wiring.build(folder)
    assert [j.name for j in built.jobs] == [f"blueprint__{bp.blueprint_id}"]
    assert built.jobs[0].tags["mos/blueprint"] == bp.blueprint_id
    assert len(built.skipped_files) == 2 and any("is a draft" in s for s in built.skipped_files)
    defs = dg.Definitions(
        assets=built.assets,
        jobs=built.jobs,
        resources={"mos": MosHome(mos_home=str(warehouse.parent))},
        executor=dg.in_process_executor,
    )
    graph = defs.resolve_asset_graph()
    assert not (FULL_BUILD_SELECTION.resolve(graph) & graph.materializable_asset_keys)  # not in the full build
    key = wiring.step_key(bp.blueprint_id, "weekly_checkpoint")
    assert wiring.step_key(bp.blueprint_id, "segment_audience") in graph.get(key).parent_keys

    result = defs.resolve_job_def(wiring.job_name(bp.blueprint_id)).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert result.success
    meta = result.asset_materializations_for_node(key.to_python_identifier())[0].metadata
    assert meta["status"].value == "ok" and meta["llm_cost_usd"].value == pytest.approx(0.0165)
    con = duckdb.connect(str(warehouse), read_only=True)
    runs = con.execute("select distinct run_id from ops.step_runs").fetchall()
    con.close()
    assert runs == [(result.run_id,)]

    _edit(bp_path, lambda data: data.update(budget_usd=data["budget_usd"]))  # rewritten, same content: still runs
    _edit(bp_path, lambda data: data["steps"][-1].update(title="changed"))
    again = defs.resolve_job_def(wiring.job_name(bp.blueprint_id)).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not again.success  # edited after approval: refused at run time
    failure = next(e for e in again.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "edited after approval" in str(failure.step_failure_data.error)


def test_cli_run_and_status(world, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mos_pipelines.cli import app

    path, bp_path = world
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(path, home / "warehouse.duckdb")
    shutil.copytree(bp_path.parent, home / "blueprints")
    monkeypatch.setenv("MOS_HOME", str(home))
    bid = bp_path.stem
    runner = CliRunner()
    before = runner.invoke(app, ["blueprint", "status", bid])
    steps = len(store.validate(bp_path).steps)
    assert before.exit_code == 0 and f"{steps} step(s) not run" in before.output
    ran = runner.invoke(app, ["blueprint", "run", bid])
    assert ran.exit_code == 0, ran.output
    assert "succeeded" in ran.output and "ad spend $1,200.00" in ran.output
    status = runner.invoke(app, ["blueprint", "status", bid])
    assert status.exit_code == 0 and "0 step(s) not run" in status.output and "ad spend $1,200.00" in status.output
    resumed = runner.invoke(app, ["blueprint", "resume", bid])
    assert resumed.exit_code == 0 and "nothing to resume" in resumed.output
    (home / "warehouse.duckdb").rename(home / "aside.duckdb")
    nowhere = runner.invoke(app, ["blueprint", "run", bid])
    assert nowhere.exit_code == 2 and "No warehouse at" in nowhere.output
    assert not (home / "warehouse.duckdb").exists()  # not created empty by the attempt
    _edit(home / "blueprints" / bp_path.name, lambda data: data["steps"][-1].update(title="changed"))
    refused = runner.invoke(app, ["blueprint", "run", bid])
    assert refused.exit_code == 2 and "edited after approval" in refused.output


def test_the_project_definitions_load_an_approved_blueprint_and_leave_out_a_broken_file(world, tmp_path):
    from tests.unit.test_definitions_loading import _load

    _, bp_path = world
    home = tmp_path / "home"
    shutil.copytree(bp_path.parent, home / "blueprints")
    (home / "blueprints" / "bp_111111111111.yaml").write_text("steps: [unclosed\n")
    loaded = _load({"MOS_HOME": str(home)})
    assert loaded["errors"] == []  # a broken blueprint file is not a load error of the project
    assert f"blueprints/{bp_path.stem}/segment_audience" in loaded["materializable"]
    assert {"raw/events", "marts/dim_customers"} <= set(loaded["materializable"])


def test_cli_resume_after_a_failed_dagster_run_runs_only_what_did_not_finish(world, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mos_pipelines.cli import app

    path, bp_path = world
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(path, home / "warehouse.duckdb")
    shutil.copytree(bp_path.parent, home / "blueprints")
    monkeypatch.setenv("MOS_HOME", str(home))
    bid = bp_path.stem
    mine = home / "blueprints" / bp_path.name
    _edit(mine, lambda data: data["steps"][0]["params"].update(where="region = 'EU' and not is_vip"))
    runner = CliRunner()
    assert runner.invoke(app, ["blueprint", "approve", bid, "--by", "ana"]).exit_code == 0
    failed = runner.invoke(app, ["blueprint", "run", bid])
    assert failed.exit_code == 1 and f"mos blueprint resume {bid}" in failed.output
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    first = dict(con.execute("select step_id, status from ops.step_runs").fetchall())
    assert first == {"segment_audience": "failed"}  # Dagster ran nothing downstream of the failure
    con.execute("alter table marts.dim_customer_features add column is_vip boolean default false")
    con.close()
    resumed = runner.invoke(app, ["blueprint", "resume", bid])
    assert resumed.exit_code == 0, resumed.output
    assert "0 step(s) not run" in resumed.output
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    runs = con.execute("select count(distinct run_id), count(*) from ops.step_runs").fetchall()[0]
    latest = dict(con.execute("select step_id, status from ops.step_runs where status = 'failed'").fetchall())
    con.close()
    steps = len(store.validate(mine).steps)
    assert runs == (2, steps + 1) and latest == {"segment_audience": "failed"}
    again = runner.invoke(app, ["blueprint", "resume", bid])
    assert again.exit_code == 0 and "nothing to resume" in again.output


def test_two_steps_on_one_channel_share_its_spend_by_budget(copy, settings):
    warehouse, bp_path = copy

    def split(data):
        paid = next(s for s in data["steps"] if s["id"] == "channel_budget_paid_search")
        paid["budget_usd"] = round(paid["budget_usd"] - 1000, 2)
        data["steps"].insert(
            data["steps"].index(paid) + 1,
            {**paid, "id": "channel_budget_paid_search_brand", "title": "brand terms", "budget_usd": 1000.0},
        )

    _edit(bp_path, split)
    bp = store.approve(bp_path, by="ana", at=APPROVED_AT)
    rows = {r.step_id: r for r in _run(warehouse, bp_path, settings)}
    main = next(s.budget_usd for s in bp.steps if s.id == "channel_budget_paid_search")
    pool = main + 1000.0
    assert rows["channel_budget_paid_search_brand"].ad_spend_usd == pytest.approx(1200.0 * 1000.0 / pool)
    assert rows["channel_budget_paid_search"].ad_spend_usd == pytest.approx(1200.0 * main / pool)
    together = rows["channel_budget_paid_search"].ad_spend_usd + rows["channel_budget_paid_search_brand"].ad_spend_usd
    assert together == pytest.approx(1200.0)  # the channel's spend is counted once
