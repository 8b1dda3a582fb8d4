"""Identity across re-runs of one generated world (``make test-heavy``: four identity runs after the build, about
six minutes of two cores): the same data changes no customer id, a bring-your-own CRM file joins the same
customers, an edited identity config changes what `mos run` does (and back), the next day keeps every unaffected
id. It first holds this 1,500-person world to the CRM quality bar that ``test_identity.py`` holds the shared small
world to (with the guards, the over-merge gate and the click links)."""

from __future__ import annotations

import dataclasses
import json

import dagster as dg
import pandas as pd
import pytest
import yaml

from mos_pipelines.configuration import DOMAINS
from mos_pipelines.simulation import generate_world
from tests.integration.conftest import World, build_world, use_home
from tests.integration.test_identity import (
    IDENTITY_ASSETS,
    IDENTITY_WORLD,
    JUNK_EMAILS,
    assert_crm_deduplication_meets_the_quality_bar,
    identity_map,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("identity_reruns_home"), IDENTITY_WORLD)


def test_crm_deduplication_meets_the_quality_bar_on_1500_people(world: World):
    """Before the re-runs change the world: the bar `make test` holds on the shared small world, on a larger one."""
    assert_crm_deduplication_meets_the_quality_bar(world)


def test_rerun_on_the_same_data_changes_no_customer_id(world: World):
    before = identity_map(world)
    outcome = world.run(IDENTITY_ASSETS)
    assert outcome.success, outcome.failures
    assert identity_map(world).equals(before)
    with world.connect() as con:
        runs = con.execute(
            "select max(run_number), count(*) filter (where run_number > 1) from marts.fct_customer_id_changes"
        ).fetchall()[0]
    assert runs == (1, 0)  # the second run appended no change (no run 2 rows at all)


def test_bring_your_own_generic_crm_file_joins_the_same_customers(world: World):
    with world.connect() as con:
        known = con.execute(
            "select node_key, email_normalised, first_name, last_name from intermediate.int_crm_contacts__normalised "
            "where email_normalised is not null and email_match_key not in (select unnest(?)) order by node_key limit 1",
            [list(JUNK_EMAILS)],
        ).fetchall()[0]
    node_key, email, first, last = known
    path = world.settings.landing_dir / "crm_contacts" / "generic" / "trade_show.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "source_record_id,first_name,last_name,email,phone,company,country,created_at\n"
        f"ts-1,{first},{last},{email.upper()},,,,2026-01-02T09:00:00Z\n"
        "ts-2,Zebulon,Quartermaine,zebulon.q@example-trade.org,,Quartermaine Ltd,GB,2026-01-02T09:05:00Z\n"
    )
    outcome = world.run(IDENTITY_ASSETS)
    assert outcome.success, outcome.failures
    customers = identity_map(world)
    assert customers["crm:generic:ts-1"] == customers[node_key]
    assert "crm:generic:ts-2" in customers.index
    assert (customers == customers["crm:generic:ts-2"]).sum() >= 1


def test_editing_the_identity_config_changes_what_mos_run_does(world: World, tmp_path, monkeypatch):
    """Block on phone only and stop comparing job titles in a copy of config/identity.yaml: the next run
    uses exactly that (the model table says so, the model card shows it) and merges fewer records; back on
    the shipped file, the clusters are what they were."""
    select = "key:intermediate/int_crm_contacts__matched"

    def state() -> tuple[pd.Series, dict, int]:
        with world.connect() as con:
            matched = (
                con.execute(
                    "select contact_record_key, match_cluster_key from intermediate.int_crm_contacts__matched "
                    "order by 1"
                )
                .df()
                .set_index("contact_record_key")["match_cluster_key"]
            )
            row = con.execute(
                "select settings_json, candidate_pairs from intermediate.int_crm_contacts__match_model limit 1"
            ).fetchall()[0]
        return matched, json.loads(row[0]), int(row[1])

    def merged(clusters: pd.Series) -> int:
        return int((clusters.groupby(clusters).transform("size") > 1).sum())

    before, settings, _ = state()
    assert ("job_title" in [c["name"] for c in settings["comparisons"]]) and len(settings["blocking_rules"]) > 5
    edited = yaml.safe_load(DOMAINS["identity"].file.read_text())
    edited["blocking_rules"] = [["phone_e164"]]
    edited["training_rules"] = [["phone_e164"]]
    edited["comparisons"] = [c for c in edited["comparisons"] if c["name"] != "job_title"]
    path = tmp_path / "identity.yaml"
    path.write_text(yaml.safe_dump(edited, sort_keys=False))
    monkeypatch.setenv("MOS_IDENTITY_CONFIG", str(path))
    outcome = world.run(select)
    assert outcome.success, outcome.failures
    after, settings, pairs = state()
    assert settings["blocking_rules"] == [["phone_e164"]]
    assert "job_title" not in [c["name"] for c in settings["comparisons"]]
    assert merged(after) < merged(before)
    event = dg.DagsterInstance.get().get_latest_materialization_event(
        dg.AssetKey(["intermediate", "int_crm_contacts__matched"])
    )
    metadata = event.asset_materialization.metadata
    assert metadata["candidate_pairs"].value == pairs and "job_title" not in metadata["model_card"].value

    monkeypatch.delenv("MOS_IDENTITY_CONFIG")
    assert world.run(select).success
    assert state()[0].equals(before)


def test_next_day_keeps_every_unaffected_customer_id(world: World):
    before = identity_map(world)
    use_home(world.settings)
    generate_world(dataclasses.replace(world.config, days=world.config.days + 1), world.settings.mos_home)
    outcome = world.run(IDENTITY_ASSETS)
    assert outcome.success, outcome.failures
    after = identity_map(world)
    with world.connect() as con:
        moved = {
            r[0]
            for r in con.execute(
                "select node_key from marts.fct_customer_id_changes where change in ('merged', 'split')"
            ).fetchall()
        }
    kept = before.index.intersection(after.index)
    changed = [k for k in kept if before[k] != after[k]]
    assert set(changed) <= moved  # every id change is a recorded merge or split
    assert len(changed) <= 0.01 * len(kept)
    assert len(after) > len(before)
