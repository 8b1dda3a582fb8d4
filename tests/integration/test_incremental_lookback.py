"""The incremental event marts against a full refresh of the same warehouse, and a planted miss the comparison
catches (issue 20, items 2 and 4; the day-by-day world is test_incremental_equality.py, in `make test-heavy`).

A backfilled event — written into raw with an old timestamp and an old load time, so neither the lookback window
nor the load watermark covers it — is exactly the case the models document as needing `--full-refresh` (or a
lookback wide enough). With lookback 0 the incremental build misses it and the comparison says where; with a
lookback that reaches its day, the incremental build equals the full refresh."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from mos_pipelines.settings import Settings
from tests.integration.conftest import World
from tests.integration.mart_equality import mart_differences

pytestmark = pytest.mark.integration

INCREMENTAL_MARTS = [
    "fct_events",
    "fct_sessions",
    "fct_touchpoints",
    "fct_conversions",
    "fct_attributed_conversions",
    "fct_channel_performance",
]
BACKFILLED_EVENT = "backfilled-late-event-1"
# The staging tables the event marts read (incremental by load time and the same lookback): a row written into raw
# reaches them through these.
STAGED_EVENTS = "stg_segment__events"
STAGED_EMAIL = "stg_esp__email_events"
LATE_EMAIL_EVENT = "late-email-message-1"


@pytest.fixture(scope="module")
def world(world_copy: World) -> World:
    """This module writes raw rows and rebuilds marts: a private copy of the shared world."""
    return world_copy


def dbt_run(home: Path, *args: str, vars: dict | None = None) -> None:
    mos = str(Path(sys.executable).parent / "mos")
    command = [mos, "dbt", "--", "run", "--select", STAGED_EVENTS, STAGED_EMAIL, *INCREMENTAL_MARTS, *args]
    if vars:
        command += ["--vars", json.dumps(vars)]
    done = subprocess.run(command, env={**os.environ, "MOS_HOME": str(home)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def differences(incremental: Settings, full: Settings) -> dict[str, str]:
    with (
        duckdb.connect(str(incremental.warehouse_path), read_only=True) as inc,
        duckdb.connect(str(full.warehouse_path), read_only=True) as ful,
    ):
        return mart_differences(inc, ful, INCREMENTAL_MARTS)


@pytest.fixture(scope="module")
def backfilled(world: World) -> World:
    """A copy of a day-1 event under a new id, loaded 'before' every other row: older than any lookback from the
    last day and than the load watermark."""
    with duckdb.connect(str(world.settings.warehouse_path)) as con:
        day_one = con.execute("select min(cast(event_timestamp as date)) from raw.events").fetchone()[0]
        # a day before the first load: a build loads many files at one time, which the watermark covers
        first_load = con.execute("select min(_loaded_at) - interval 1 day from raw.events").fetchone()[0]
        con.execute(
            "insert into raw.events by name select * replace (? as message_id, ? as _loaded_at) from raw.events "
            "where cast(event_timestamp as date) = ? and type = 'page' order by message_id limit 1",
            [BACKFILLED_EVENT, first_load, day_one],
        )
        # email: an exact redelivery of a held event, loaded last (kept once, the first copy), and a new event of the
        # last day written with an old load time (in by the lookback)
        # (a load time after every other, never now(): DuckDB gives it in the machine's zone, the loader's are UTC)
        con.execute(
            "insert into raw.email by name select * replace ("
            "(select max(_loaded_at) from raw.email) + interval 1 second as _loaded_at) from raw.email "
            "order by message_id, event limit 1"
        )
        con.execute(
            "insert into raw.email by name select * replace (? as message_id, ? as _loaded_at) from raw.email "
            "where event = 'sent' order by occurred_at desc, message_id limit 1",
            [LATE_EMAIL_EVENT, first_load],
        )
    return world


def staging_differences(incremental: Settings, full: Settings) -> dict[str, tuple[int, int]]:
    """Per staging table: rows only in the incremental build and only in the full one (0, 0 when equal)."""
    found = {}
    with duckdb.connect(str(incremental.warehouse_path), read_only=True) as con:
        con.execute(f"attach '{full.warehouse_path}' as full_build (read_only)")
        for table in (STAGED_EVENTS, STAGED_EMAIL):
            one_way = f"select * from staging.{table} except all select * from full_build.staging.{table}"
            other_way = f"select * from full_build.staging.{table} except all select * from staging.{table}"
            counts = tuple(con.execute(f"select count(*) from ({q})").fetchone()[0] for q in (one_way, other_way))
            if counts != (0, 0):
                found[table] = counts
    return found


@pytest.fixture(scope="module")
def full(backfilled: World, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The backfilled world's MOS_HOME copied, its incremental marts rebuilt from scratch (a full refresh does not
    depend on what the incremental runs left, so both tests compare with this one)."""
    home = tmp_path_factory.mktemp("full_refresh") / "home"
    shutil.copytree(backfilled.settings.mos_home, home)
    dbt_run(home, "--full-refresh")
    return Settings(mos_home=home)


def test_with_lookback_zero_the_backfilled_event_is_missed_and_the_comparison_says_where(backfilled, full):
    dbt_run(backfilled.settings.mos_home, vars={"mos__incremental_lookback_days": 0, "mos__sessions_lookback_days": 0})

    found = differences(backfilled.settings, full)

    assert "fct_events" in found and BACKFILLED_EVENT in found["fct_events"], found
    assert "0 rows only in the incremental build, 1 only in the full one" in found["fct_events"]


def test_with_a_lookback_reaching_its_day_every_incremental_mart_equals_a_full_refresh(backfilled, full):
    with duckdb.connect(str(backfilled.settings.warehouse_path), read_only=True) as con:
        span = con.execute("select max(event_date) - min(event_date) from marts.fct_events").fetchone()[0]
    dbt_run(
        backfilled.settings.mos_home,
        vars={"mos__incremental_lookback_days": span, "mos__sessions_lookback_days": span},
    )

    with duckdb.connect(str(backfilled.settings.warehouse_path), read_only=True) as con:
        assert (
            con.execute("select count(*) from marts.fct_events where event_id = ?", [BACKFILLED_EVENT]).fetchone()[0]
            == 1
        )
        late = f"select count(*) from staging.{STAGED_EMAIL} where message_id = ?"
        assert con.execute(late, [LATE_EMAIL_EVENT]).fetchone()[0] == 1
    assert differences(backfilled.settings, full) == {}
    assert staging_differences(backfilled.settings, full) == {}


def test_mos_run_full_refresh_rebuilds_an_incremental_mart_from_scratch(backfilled, tmp_path_factory):
    """`mos run --full-refresh` passes dbt's `--full-refresh`: a row an incremental run cannot see again (the
    backfilled event's day is outside the lookback and its load time under the watermark) comes back, where the
    same run without it leaves the mart as it was; identity's id log is exempt (`full_refresh=False`)."""
    from mos_pipelines.runner import run_assets
    from tests.integration.conftest import use_home

    home = tmp_path_factory.mktemp("mos_run_full_refresh") / "home"
    shutil.copytree(backfilled.settings.mos_home, home)
    settings = Settings(mos_home=home)

    def backfilled_rows() -> int:
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            query = "select count(*) from marts.fct_events where event_id = ?"
            return con.execute(query, [BACKFILLED_EVENT]).fetchone()[0]

    def id_log_stamps() -> list[tuple]:
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            query = "select run_number, count(*), max(changed_at) from marts.fct_customer_id_changes group by 1"
            return sorted(con.execute(query).fetchall())

    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("delete from marts.fct_events where event_id = ?", [BACKFILLED_EVENT])
    use_home(settings)
    try:
        events = f"key:staging/{STAGED_EVENTS} or key:marts/fct_events"
        assert run_assets(events).success
        assert backfilled_rows() == 0
        id_log = id_log_stamps()
        assert run_assets(f"{events} or key:marts/fct_customer_id_changes", full_refresh=True).success
        assert backfilled_rows() == 1
        assert id_log_stamps() == id_log  # identity's id log is never started over: customer ids stay
    finally:
        use_home(backfilled.settings)
