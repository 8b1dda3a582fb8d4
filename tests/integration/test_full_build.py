"""A generated world built through Dagster for real: raw counts match the generator's truth,
sessions split on 30-minute gaps, re-runs load nothing, bad rows are quarantined."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.conftest import World

pytestmark = pytest.mark.integration

COUNTED = ("raw", "staging", "intermediate", "marts")


@pytest.fixture(scope="module")
def world(world_copy: World) -> World:
    """This module writes (it runs assets again, lands a file): a private copy of the shared world."""
    return world_copy


def table_counts(world: World) -> dict[str, int]:
    with world.connect() as con:
        names = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in (select unnest(?)) order by 1",
            [list(COUNTED)],
        ).fetchall()
        return {name: con.execute(f"select count(*) from {name}").fetchall()[0][0] for (name,) in names}


def sessionize(events: pd.DataFrame, timeout_minutes: int = 30) -> pd.DataFrame:
    """Independent sessionization: a gap longer than the timeout starts a new session."""
    events = events.sort_values(["device_key", "occurred_at", "event_id"])
    gap = events.groupby("device_key")["occurred_at"].diff()
    events["session_no"] = (
        (gap.isna() | (gap > pd.Timedelta(minutes=timeout_minutes))).groupby(events["device_key"]).cumsum()
    )
    return (
        events.groupby(["device_key", "session_no"])
        .agg(
            session_start_at=("occurred_at", "min"),
            session_end_at=("occurred_at", "max"),
            event_count=("event_id", "size"),
        )
        .reset_index()
        .drop(columns="session_no")
    )


def test_first_build_succeeds_with_every_check_passing(world: World):
    assert world.first_run.success, world.first_run.failures
    assert world.first_run.checks_failed == 0
    assert world.first_run.materialized >= 25  # 8 raw sources + seeds + dbt models


def test_raw_rows_and_quarantine_match_the_generator_per_file(world: World):
    files = world.manifest["files"]
    with world.connect() as con:
        loaded = Counter(
            dict(
                con.execute(
                    "select _source_file, count(*) from ("
                    + " union all ".join(f"select _source_file from raw.{s}" for s in {f["source"] for f in files})
                    + ") group by 1"
                ).fetchall()
            )
        )
        quarantined = Counter(
            dict(con.execute("select source_file, count(*) from raw.quarantine group by 1").fetchall())
        )
    for f in files:
        assert loaded[f["path"]] == f["rows_valid"], f["path"]
        assert quarantined[f["path"]] == f["rows_malformed"], f["path"]
    assert sum(quarantined.values()) == sum(f["rows_malformed"] for f in files) > 0


def test_fct_events_holds_each_valid_event_once(world: World):
    events = [f for f in world.manifest["files"] if f["source"] == "events"]
    with world.connect() as con:
        n_events = con.execute("select count(*) from marts.fct_events").fetchall()[0][0]
    assert n_events == sum(f["rows_valid"] - f["rows_duplicate"] for f in events)


def test_sessions_split_on_30_minute_gaps_as_in_the_truth(world: World):
    truth = pd.read_parquet(world.settings.truth_dir / "sessions.parquet")
    complete = truth[(truth["n_events_landed"] == truth["n_events"]) & truth["anonymous_id"].notna()].copy()
    with world.connect() as con:
        sessions = con.execute(
            "select anonymous_id, session_start_at, session_end_at, event_count from marts.fct_sessions "
            "where anonymous_id is not null"
        ).df()

    def keys(frame: pd.DataFrame, start: str, end: str, count: str) -> set:
        return set(zip(frame["anonymous_id"], frame[start], frame[end], frame[count].astype(int)))

    for col in ("start_at", "end_at"):
        complete[col] = complete[col].dt.tz_convert(None).astype("datetime64[us]")
    for col in ("session_start_at", "session_end_at"):
        sessions[col] = sessions[col].astype("datetime64[us]")
    expected = keys(complete, "start_at", "end_at", "n_events")
    ours = keys(sessions, "session_start_at", "session_end_at", "event_count")
    assert len(complete) > 200
    assert expected <= ours, f"{len(expected - ours)} true sessions missing, e.g. {sorted(expected - ours)[:3]}"
    assert len(sessions) == int((truth["n_events_landed"] > 0).sum())


def test_a_second_run_with_no_new_files_changes_nothing(world: World):
    before = table_counts(world)
    outcome = world.run()
    assert outcome.success, outcome.failures
    with world.connect() as con:
        new_files = con.execute("select count(*) from ops.file_ledger").fetchall()[0][0]
    assert new_files == len(world.manifest["files"])
    assert table_counts(world) == before


def test_three_malformed_lines_in_a_new_file_are_quarantined_through_dagster(world: World):
    good = [
        json.dumps(
            {
                "messageId": f"extra-{i}",
                "type": "page",
                "timestamp": f"2026-01-03T12:{i:02d}:00Z",
                "anonymousId": "device-extra",
                "context": {"page": {"path": "/pricing"}},
            }
        )
        for i in range(7)
    ]
    bad = [
        '{"messageId": "x1", "type": ',
        '{"messageId": "x2", "type": "track", "timestamp": "soon", "userId": "u"}',
        '{"messageId": "x3", "type": "track", "timestamp": "2026-01-03T12:00:00Z"}',
    ]
    lines = good[:2] + bad[:1] + good[2:4] + bad[1:2] + good[4:] + bad[2:]
    path = world.settings.landing_dir / "events" / "manual_upload.jsonl"
    path.write_text("\n".join(lines) + "\n")

    outcome = world.run("key:raw/events")

    assert outcome.success, outcome.failures
    assert outcome.checks_failed == 0 and outcome.checks_passed >= 1  # rows_reconcile among them
    with world.connect() as con:
        reasons = con.execute(
            "select line, reason from raw.quarantine where source_file = 'events/manual_upload.jsonl' order by line"
        ).fetchall()
        loaded = con.execute(
            "select count(*) from raw.events where _source_file = 'events/manual_upload.jsonl'"
        ).fetchall()[0][0]
    assert [line for line, _ in reasons] == [3, 6, 10]
    assert reasons[0][1] == "malformed JSON" and "soon" in reasons[1][1] and "anonymousId" in reasons[2][1]
    assert loaded == 7


def test_dg_check_defs_passes(world: World):
    dg = Path(sys.executable).parent / "dg"
    proc = subprocess.run([str(dg), "check", "defs"], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr


def test_summary_reports_layers_quarantine_and_identity_quality(world: World):
    from mos_pipelines.summary import warehouse_summary

    with world.connect() as con:
        found = warehouse_summary(con, truth_file=world.settings.truth_dir / "identity_truth.csv")
        quarantined = con.execute("select count(*) from raw.quarantine").fetchall()[0][0]
    assert {"raw", "staging", "intermediate", "marts"} <= set(found.layers)
    assert sum(row.rows_quarantined for row in found.ingestion) == quarantined > 0
    assert any("known customers" in line for line in found.highlights)
    assert any(line.startswith("CRM deduplication vs the simulator's truth") for line in found.highlights)
    assert any(line.startswith("next best action on ") and "no action for" in line for line in found.highlights)
