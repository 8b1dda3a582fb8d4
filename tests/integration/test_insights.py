"""Insights Hub on a world built through Dagster for real: the two assets and their check, the report,
traceability of every statement, the semantic-layer queries against MetricFlow, feedback changing the next
ranking, the `mos insights` command and the insights tour notebook."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import nbformat
import pandas as pd
import pytest
import yaml
from nbclient import NotebookClient
from typer.testing import CliRunner

from mos_pipelines.cli import app
from mos_pipelines.configuration import load_insights as load_config
from mos_pipelines.experiments import allocation_tables
from mos_pipelines.insights import insight_tables
from mos_pipelines.insights.notify import notify
from mos_pipelines.insights.pipeline import generate_insights
from mos_pipelines.insights.semantic import SemanticLayer
from mos_pipelines.insights.traceability import problems
from mos_pipelines.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from mos_pipelines.simulation import WorldConfig

from .conftest import World, build_world, use_home

SCENARIO = Path(__file__).with_name("insights_planted.yaml")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """500 people × 14 days of the planted scenario without its traffic drop (the volume gate would rightly
    stop everything downstream of fct_events), every asset built, insights included. Anomalies need three
    weeks and are covered by the ten worlds of test_insights_recall.py."""
    folder = tmp_path_factory.mktemp("insights")
    scenario = yaml.safe_load(SCENARIO.read_text())
    scenario["volume"] = []
    (folder / "steady.yaml").write_text(yaml.safe_dump(scenario))
    yield build_world(folder / "home", WorldConfig(seed=3, people=500, days=14, scenario=folder / "steady.yaml"))


def latest(world: World, status: str | None = "accepted") -> pd.DataFrame:
    with world.connect() as con:
        return insight_tables.run_insights(con, status=status)


def test_the_assets_write_insights_notifications_report_and_metadata(world: World) -> None:
    assert world.first_run.success, world.first_run.failures
    assert world.first_run.checks_failed == 0, world.first_run.failures  # statements_traceable included
    with world.connect() as con:
        columns = con.sql("describe insights.insights").df()["column_name"].tolist()
        calls = con.sql("select model, outcome, cost_usd, tokens_in, tokens_out from ops.llm_calls").df()
        notified = con.sql(
            "select reader_id, count(*) n from insights.notifications where source = 'insights' group by 1"
        ).df()
    assert tuple(columns) == insight_tables.INSIGHT_COLUMNS
    rows = latest(world)
    everything = latest(world, status=None)
    accepted = everything[everything["status"] == "accepted"]
    assert len(accepted) >= 5 and len(everything) > len(accepted)
    assert {"channel_comparison", "region_comparison", "budget_pacing"} <= set(accepted["insight_type"])
    assert set(everything["status"]) <= {
        "accepted",
        "rejected_not_significant",
        "rejected_not_material",
        "rejected_insufficient_data",
    }
    for row in everything[everything["status"] != "accepted"].itertuples():
        assert row.evidence["decision"]["reason"], row.insight_id
    assert (accepted["q_value"] <= load_config().max_q_value).all()
    # channels are compared within regions and within customer segments; segments have no cost, so only
    # conversion rates are compared by segment (spend is not split by segment)
    comparisons = [r.evidence["subject"] for r in everything.itertuples() if r.insight_type == "channel_comparison"]
    by_segment = [s for s in comparisons if s["dimension"] == "segment"]
    assert {s["dimension"] for s in comparisons} == {"region", "segment"}
    assert {s["metric"] for s in by_segment} == {"conversion_rate"} and "all" not in {s["slice"] for s in by_segment}
    # no_account holds customers the data could not place: not a segment to compare channels within
    assert "large_account" in {s["slice"] for s in by_segment} and "no_account" not in {s["slice"] for s in by_segment}
    # a one-shot build assigns units the day after the data: the holdout lift says why it is not measured yet
    with world.connect() as con:
        holdout = con.sql("select sum(assigned_units) a, sum(observed_units) o from marts.fct_experiment_holdout").df()
    assert holdout["a"].iloc[0] > 0 and holdout["o"].iloc[0] == 0
    # one offline model call per accepted insight, each with tokens and a $ cost (0 offline)
    assert len(calls) == len(rows) and set(calls["outcome"]) == {"ok"}
    assert (calls["tokens_in"] > 0).all() and (calls["cost_usd"] == 0).all()
    assert calls["model"].str.startswith("mos-offline/").all()
    caps = {r.reader_id: r.daily_cap for r in load_config().readers}
    assert not notified.empty and all(n <= caps[r] for r, n in zip(notified["reader_id"], notified["n"]))

    report = world.settings.reports_dir / "insights_latest.html"
    html = report.read_text()
    top = rows.head(load_config().report_top)
    for statement in top["statement"]:
        assert statement.replace("&", "&amp;") in html.replace("&#x27;", "'")
    assert html.count("data:image/png;base64,") >= 3 and "mf query" in html

    use_home(world.settings)
    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(["insights", "insights"]))
    metadata = event.asset_materialization.metadata
    assert rows["statement"].iloc[0].replace("|", "/") in metadata["top_insights"].value
    assert "not compared within no_account" in metadata["not_computed"].value
    assert metadata["accepted"].value == len(rows)


def test_every_number_in_every_statement_is_traceable_to_its_evidence(world: World) -> None:
    everything = latest(world, status=None)
    untraceable = {
        r.insight_id: problems(r.insight_type, r.statement, r.effect_size, r.evidence)
        for r in everything.itertuples()
        if r.status != "rejected_insufficient_data"
    }
    assert {k: v for k, v in untraceable.items() if v} == {}
    assert len(untraceable) > 50
    # Decomposable: re-running each accepted insight's metric query returns exactly its evidence rows.
    with world.connect() as con:
        for row in everything[everything["status"] == "accepted"].itertuples():
            stored = pd.DataFrame(row.evidence["rows"])
            fresh = con.execute(row.evidence["metric_query"]["sql"]).df()[list(stored.columns)]
            for frame in (stored, fresh):
                for column in frame.columns:
                    if column.endswith("day") or column.endswith("_at"):
                        frame[column] = pd.to_datetime(frame[column], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
            pd.testing.assert_frame_equal(stored, fresh, check_dtype=False, obj=row.insight_id)


def test_compiled_metric_queries_answer_what_metricflow_answers(world: World, tmp_path: Path) -> None:
    semantic = SemanticLayer.load()
    metrics = ["conversion_rate", "roas", "cac", "sessions"]
    query = semantic.query(metrics, ["channel", "region"], with_components=False)
    with world.connect() as con:
        ours = semantic.run(con, query)
    env = {**os.environ, "MOS_HOME": str(world.settings.mos_home)}
    proc = subprocess.run(
        [
            str(Path(os.sys.executable).parent / "mf"),
            "query",
            "--metrics",
            ",".join(metrics),
            "--group-by",
            "channel_performance__channel,channel_performance__region",
            "--csv",
            str(tmp_path / "mf.csv"),
            "--limit",
            "1000",
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    theirs = pd.read_csv(tmp_path / "mf.csv", keep_default_na=False, na_values=[""])
    theirs = theirs.rename(columns={"channel_performance__channel": "channel", "channel_performance__region": "region"})
    merged = ours.merge(theirs, on=["channel", "region"], suffixes=("", "_mf"), how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    for metric in metrics:
        pd.testing.assert_series_equal(
            merged[metric].astype(float), merged[f"{metric}_mf"].astype(float), check_names=False, rtol=1e-9
        )
    # the segment metrics too, read under the names the comparisons use
    query = semantic.query(
        ["conversion_rate_by_segment", "sessions_by_segment"],
        ["channel", "segment"],
        with_components=False,
        aliases={"conversion_rate_by_segment": "conversion_rate"},
    )
    with world.connect() as con:
        ours = semantic.run(con, query)
    proc = subprocess.run(
        [
            str(Path(os.sys.executable).parent / "mf"),
            "query",
            "--metrics",
            "conversion_rate_by_segment,sessions_by_segment",
            "--group-by",
            "channel_segment_performance__channel,channel_segment_performance__segment",
            "--csv",
            str(tmp_path / "mf_segments.csv"),
            "--limit",
            "1000",
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    theirs = pd.read_csv(tmp_path / "mf_segments.csv", keep_default_na=False, na_values=[""]).rename(
        columns={"channel_segment_performance__channel": "channel", "channel_segment_performance__segment": "segment"}
    )
    merged = ours.merge(theirs, on=["channel", "segment"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all() and len(merged) > 5, merged[merged["_merge"] != "both"]
    for ours_column, mf_column in (
        ("conversion_rate", "conversion_rate_by_segment"),
        ("sessions_by_segment_x", "sessions_by_segment_y"),
    ):
        pd.testing.assert_series_equal(
            merged[ours_column].astype(float), merged[mf_column].astype(float), check_names=False, rtol=1e-9
        )


def test_feedback_not_useful_lowers_the_type_and_completed_removes_the_insight(world: World, tmp_path: Path) -> None:
    shutil.copy(world.settings.warehouse_path, tmp_path / "warehouse.duckdb")
    config_file = tmp_path / "insights.yaml"
    config_file.write_text(
        (PROJECT_ROOT / "config" / "insights.yaml").read_text().split("readers:")[0]
        + "readers:\n  - {id: analyst, objectives: [acquisition, conversion, operations, engagement], daily_cap: 1000}\n"
        + "notifications: {min_score: 0.0, not_useful_factor: 0.5}\n"
    )
    config = load_config(config_file)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    t1 = datetime.datetime(2026, 2, 1, 9, tzinfo=datetime.UTC)

    def run(at: datetime.datetime) -> pd.DataFrame:
        generate_insights(con, config, now=at, use_llm=False)
        return notify(con, config, now=at).rankings.set_index("insight_key")

    first = run(t1)
    sent = first[first["decision"] == "notified"].sort_values("rank")
    target = sent.iloc[0]
    control = sent[sent["insight_type"] != target["insight_type"]].iloc[0]
    insight_tables.record_feedback(con, target["notification_id"], "analyst", "not_useful", at=t1)

    second = run(t1 + datetime.timedelta(hours=1))
    assert second.at[target.name, "rank"] > target["rank"]
    assert set(second["decision"]) == {"repeat"}  # same data: nothing changed materially, nothing re-sent
    relative = (second.at[target.name, "score"] / target["score"]) / (
        second.at[control.name, "score"] / control["score"]
    )
    assert relative == pytest.approx(0.5)
    assert second.at[control.name, "feedback_weight"] == 1.0

    insight_tables.record_feedback(con, control["notification_id"], "analyst", "mark_as_completed", at=t1)
    third = run(t1 + datetime.timedelta(hours=2))
    assert third.at[control.name, "decision"] == "completed" and pd.isna(third.at[control.name, "rank"])
    statuses = dict(con.execute("select notification_id, status from insights.notifications").fetchall())
    assert statuses[target["notification_id"]] == "not_useful" and statuses[control["notification_id"]] == "completed"
    con.close()


def test_mos_insights_prints_the_top_insights_and_takes_feedback(world: World) -> None:
    rows = latest(world)
    runner = CliRunner()
    env = {"MOS_HOME": str(world.settings.mos_home), "COLUMNS": "200"}
    shown = runner.invoke(app, ["insights", "--limit", "3"], env=env)
    assert shown.exit_code == 0, shown.output
    assert all(i in shown.output for i in rows["insight_id"].head(3)) and rows["insight_id"].iloc[3] not in shown.output
    assert "insights_latest.html" in shown.output
    mine = runner.invoke(app, ["insights", "--reader", "performance_marketer"], env=env)
    assert mine.exit_code == 0 and "Notifications of performance_marketer" in mine.output
    bad = runner.invoke(app, ["insights", "feedback", "nope", "--reader", "x", "--verdict", "great"], env=env)
    assert bad.exit_code == 2 and "not one of useful, not_useful, mark_as_completed" in bad.output


def test_the_insights_tour_notebook_runs_from_an_insight_to_its_rows(world: World) -> None:
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "insights_tour.ipynb", as_version=4)
    previous = os.environ.get("MOS_HOME")
    os.environ["MOS_HOME"] = str(world.settings.mos_home)  # the kernel inherits it
    try:
        NotebookClient(notebook, timeout=180, kernel_name="python3").execute()
    finally:
        if previous is not None:
            os.environ["MOS_HOME"] = previous
    text = "\n".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "identical to the" in text and "traceable" in text
    assert json.dumps(latest(world)["statement"].iloc[0])[1:-1].split(" (")[0][:40] in text


def test_lift_over_the_holdout_follows_each_assigned_unit_from_its_assignment(world: World) -> None:
    """An assignment source that reports the world's own holdout (which the simulator never emails), each unit
    assigned on its first send day: the mart finds exactly the units the truth says converted within 7 days,
    and the holdout_lift insights are tested per experiment and region, traceable to the mart's rows.
    Last in the module: it replaces the world's experiments.assignments and rebuilds the mart."""
    truth = pd.read_parquet(world.settings.truth_dir / "email_sends.parquet")
    start = datetime.date.fromisoformat(world.manifest["config"]["start_date"])
    truth["unit_id"] = truth["recipient_email"].str.strip().str.lower()
    first = truth.sort_values(["day", "sent_at"]).groupby(["campaign_id", "unit_id"], as_index=False).first()
    first["assigned_on"] = first["day"].map(lambda d: start + datetime.timedelta(days=int(d)))
    with duckdb.connect(str(world.settings.warehouse_path)) as con:
        con.execute("delete from experiments.assignments")
        allocation_tables.write_assignments(
            con,
            pd.DataFrame(
                {
                    "experiment_id": first["campaign_id"],
                    "unit_id": first["unit_id"],
                    "segment": first["region"],
                    "holdout_bucket": first["is_holdout"].map({True: 0.0, False: 1.0}),
                    "arm_bucket": 0.5,
                    "is_holdout": first["is_holdout"],
                    "variant_id": first["variant_id"],
                    "allocation_date": first["assigned_on"],
                }
            ),
        )
    outcome = world.run("key:marts/fct_experiment_holdout")
    assert outcome.success, outcome.failures

    # the truth: units whose person completed an order within 7 days of 00:00 UTC of their assignment day
    orders = pd.read_parquet(world.settings.truth_dir / "orders.parquet")
    orders = orders[orders["status"] == "completed"]
    window = first.assign(start_at=pd.to_datetime(first["assigned_on"]).dt.tz_localize("UTC")).merge(
        orders[["person_id", "created_at"]], on="person_id", how="left"
    )
    window["converted"] = (window["created_at"] >= window["start_at"]) & (
        window["created_at"] < window["start_at"] + pd.Timedelta(days=7)
    )
    true_converted = (
        window.groupby(["campaign_id", "is_holdout", "unit_id"])["converted"].any().groupby(level=[0, 1]).sum()
    )
    with world.connect() as con:
        mart = con.sql("select * from marts.fct_experiment_holdout").df()
        run = generate_insights(con, write=False, use_llm=False)
    arms = mart.groupby(["experiment_id", "is_holdout"])[
        ["assigned_units", "observed_units", "sent_units", "converted_units"]
    ].sum()
    assert (
        arms["assigned_units"]
        == first.groupby(["campaign_id", "is_holdout"])["unit_id"]
        .nunique()
        .rename_axis(["experiment_id", "is_holdout"])
    ).all()
    assert (arms["observed_units"] == arms["assigned_units"]).all()
    assert (arms.xs(True, level="is_holdout")["sent_units"] == 0).all()  # a clean holdout
    assert (arms.xs(False, level="is_holdout")["sent_units"] > 0).all()
    assert arms["converted_units"].to_dict() == {(k[0], bool(k[1])): int(v) for k, v in true_converted.items()}

    lifts = [c for c in run.candidates if c.insight_type == "holdout_lift"]
    assert {c.subject["campaign_id"] for c in lifts} == set(first["campaign_id"])
    overall = [c for c in lifts if c.subject["region"] == "all"]
    assert len(overall) == 2 and all(c.p_value is not None for c in overall)
    for c in lifts:
        assert c.untestable or c.p_value is not None, c.key
        if not c.untestable:
            treated, holdout = c.evidence["summary"]
            assert c.effect_size == pytest.approx(treated["cvr"] / holdout["cvr"])
            assert problems(c.insight_type, c.statement, c.effect_size, {**c.evidence, "subject": c.subject}) == []
