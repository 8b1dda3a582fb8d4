"""Adding a day of landing data: only the new files load, and incremental sessions stay exact."""

from __future__ import annotations

import dataclasses
import hashlib

import pandas as pd
import pytest

from mos_pipelines.simulation import generate_world
from tests.integration.conftest import World, use_home
from tests.integration.test_full_build import sessionize

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(world_copy: World) -> World:
    """This module writes (it runs assets again, lands the next day): a private copy of the shared world."""
    return world_copy


def digests(world: World) -> dict[str, str]:
    root = world.settings.landing_dir
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def test_next_day_loads_only_new_files_and_sessions_match_a_recompute(world: World):
    before = digests(world)
    use_home(world.settings)
    generate_world(dataclasses.replace(world.config, days=world.config.days + 1), world.settings.mos_home)
    after = digests(world)
    assert {k: v for k, v in after.items() if k in before} == before  # earlier files untouched
    new_files = set(after) - set(before)
    assert new_files, "the extra day wrote no files"

    outcome = world.run()

    assert outcome.success, outcome.failures
    with world.connect() as con:
        ledger_new = {r[0] for r in con.execute("select source_file from ops.file_ledger").fetchall()} - set(before)
        events = con.execute("select event_id, device_key, occurred_at from marts.fct_events").df()
        sessions = con.execute(
            "select device_key, session_start_at, session_end_at, event_count from marts.fct_sessions"
        ).df()
    assert ledger_new == new_files
    expected = sessionize(events)
    key = ["device_key", "session_start_at"]
    merged = expected.merge(sessions, on=key, how="outer", suffixes=("_expected", "_built"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head()
    assert (merged["session_end_at_expected"] == merged["session_end_at_built"]).all()
    assert (merged["event_count_expected"] == merged["event_count_built"]).all()
    assert len(sessions) > 0 and pd.api.types.is_datetime64_any_dtype(sessions["session_start_at"])
