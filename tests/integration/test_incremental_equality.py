"""A world built day by day equals the same landing files built at once (issue 20, item 4).

Day 1's landing files arrive, the planned daily run (what `mos run` and the schedule do) builds them; then day 2's
files, another run; … to day N. A second MOS_HOME generates the same N days and builds them in one run. Every mart
must hold the same rows: customer ids translated through the identity map (the clusterings must agree; an id may
differ only where identity changed after it was minted), run-time columns excluded by name
(tests/integration/mart_equality.py). The simulator delivers 2 % of events one to three days late, in a later
day's file, so the incremental marts see late events on most days."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mos_pipelines.runner import run_assets
from mos_pipelines.settings import Settings
from mos_pipelines.simulation import WorldConfig, generate_world
from tests.integration.conftest import World, build_world, use_home
from tests.integration.mart_equality import (
    customer_id_translation,
    ids_that_differ_have_history,
    mart_differences,
    mart_tables,
)

pytestmark = pytest.mark.integration

EQUALITY_WORLD = WorldConfig(seed=5, people=250, days=5)  # 2 % of events 1-3 days late


def build_day_by_day(home: Path, config: WorldConfig) -> World:
    """Generate day 1, run; generate day 2 (earlier files unchanged), run; … to config.days."""
    settings = Settings(mos_home=home)
    outcome = None
    for day in range(1, config.days + 1):
        use_home(settings)
        generate_world(dataclasses.replace(config, days=day), home)
        outcome = run_assets(None)
        assert outcome.success, f"day {day}: {outcome.failures}"
    assert outcome is not None
    return World(settings=settings, config=config, first_run=outcome)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, World]:
    daily = build_day_by_day(tmp_path_factory.mktemp("daily") / "home", EQUALITY_WORLD)
    full = build_world(tmp_path_factory.mktemp("full") / "home", EQUALITY_WORLD)
    assert full.first_run.success, full.first_run.failures
    return daily, full


def test_the_days_carried_late_events_past_the_lookback_window(builds):
    daily, _ = builds
    with daily.connect() as con:
        late = con.execute(
            "select count(*) from marts.fct_events as e inner join raw.events as r on e.event_id = r.message_id "
            "where r._source_file not like '%' || strftime(e.event_date, '%Y-%m-%d') || '%'"
        ).fetchone()[0]
        dates = con.execute("select count(distinct event_date) from marts.fct_events").fetchone()[0]
    assert late > 0, "no late event: the comparison would not exercise the late-event path"
    assert dates == EQUALITY_WORLD.days


def test_every_mart_built_day_by_day_equals_a_full_build(builds):
    daily, full = builds
    with daily.connect() as inc, full.connect() as ful:
        assert len(mart_tables(ful)) >= 20
        differences = mart_differences(inc, ful)
    assert not differences, "\n".join(f"{name}: {what}" for name, what in differences.items())


def test_customer_ids_differ_only_where_identity_changed_after_they_were_minted(builds):
    daily, full = builds
    with daily.connect() as inc, full.connect() as ful:
        translate = customer_id_translation(inc, ful)
        unexplained = ids_that_differ_have_history(inc, translate)
    assert len(translate) > 100
    assert not unexplained, unexplained[:10]
