"""Identity resolution on the shared small world (conftest ``world``, read-only), against its truth: quality, junk
guards, the over-merge gate and e-mail click links. The quality bar on 1,500 people and the re-runs (stable ids, a
bring-your-own CRM file, an edited config, the next day) are in ``test_identity_reruns.py`` (``make test-heavy``)."""

from __future__ import annotations

import shutil
import subprocess

import duckdb
import pandas as pd
import pytest

from mos_pipelines.experiments.outcomes import email_match_key_sql
from mos_pipelines.identity.truth_eval import evaluate_identity, truth_node_key
from mos_pipelines.simulation import WorldConfig
from mos_pipelines.transform.project import dbt_command
from tests.integration.conftest import World, use_home

pytestmark = pytest.mark.integration

IDENTITY_WORLD = WorldConfig(seed=5, people=1500, days=5)
# Re-runs build what identity reads and writes (31 of the 91 assets: ingestion, staging, the matcher, the identity
# map and id history), not insights and activation: a third of a full run, and the same identity code path. It is
# also a subset run on new data: dbt must not test a rebuilt map against children left as they were
# (dim_customers, consents: defs/transform/assets.py dbt_build).
IDENTITY_ASSETS = "+key:marts/dim_customer_identity_map"
JUNK_EMAILS = ("test@test.com", "none@none.com")


def identity_map(world: World) -> pd.Series:
    with world.connect() as con:
        frame = con.execute("select node_key, customer_id from marts.dim_customer_identity_map").df()
    return frame.set_index("node_key")["customer_id"].sort_index()


def assert_crm_deduplication_meets_the_quality_bar(world: World) -> None:
    assert world.first_run.success, world.first_run.failures
    with world.connect() as con:
        crm = evaluate_identity(con, world.settings.truth_dir / "identity_truth.csv", crm_only=True)
    assert crm.clusters.pairs.f1 >= 0.97, crm.to_markdown()
    assert crm.clusters.largest_predicted_cluster <= 2 * crm.clusters.largest_true_entity


def test_crm_deduplication_meets_the_quality_bar(world: World):
    assert_crm_deduplication_meets_the_quality_bar(world)


def test_junk_identifiers_are_excluded_and_never_merge_people(world: World):
    truth = pd.read_csv(world.settings.truth_dir / "identity_truth.csv", dtype=str, keep_default_na=False)
    person = {
        truth_node_key(s, r): e for s, r, e in zip(truth["source"], truth["source_record_id"], truth["true_entity_id"])
    }
    with world.connect() as con:
        excluded = {
            r[0] for r in con.execute("select node_key from intermediate.int_identity__excluded_identifiers").fetchall()
        }
        junk_records = con.execute(
            "select node_key from intermediate.int_crm_contacts__normalised where email_match_key in (select unnest(?))",
            [list(JUNK_EMAILS)],
        ).df()["node_key"]
    assert {f"email:{e}" for e in JUNK_EMAILS} <= excluded
    customers = identity_map(world)
    by_customer = pd.DataFrame(
        {"customer": customers.reindex(junk_records).to_numpy(), "person": [person[k] for k in junk_records]}
    )
    assert len(by_customer) >= 4 and by_customer["person"].nunique() >= 2
    # records that share a junk email belong to different customers unless they are the same person
    assert (by_customer.groupby("customer")["person"].nunique() == 1).all()


def test_the_over_merge_gate_passes_this_world_and_catches_a_junk_email_that_slips_past_the_guards(
    world: World, tmp_path
):
    """The gate assert_identity_cluster_sizes_are_sane, compiled by dbt, on the world's warehouse (the run
    passed it) and on a copy where the CRM records of the junk emails are one customer, as they would be if
    the guards let the email link them: the matcher kept them apart as different people, so the gate fails."""
    use_home(world.settings)
    target = tmp_path / "target"
    proc = subprocess.run(
        dbt_command(
            [
                "compile",
                "--quiet",
                "--target-path",
                str(target),
                "--log-path",
                str(tmp_path / "logs"),
                "--select",
                "assert_identity_cluster_sizes_are_sane",
            ]
        ),
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    gate = next(target.rglob("assert_identity_cluster_sizes_are_sane.sql")).read_text()
    with world.connect() as con:
        assert con.execute(gate).fetchall() == []
    planted = tmp_path / "warehouse.duckdb"  # same file name: the compiled SQL names the catalog "warehouse"
    shutil.copy(world.settings.warehouse_path, planted)
    with duckdb.connect(str(planted)) as con:
        junk = [
            k
            for (k,) in con.execute(
                "select 'crm:' || contact_record_key from intermediate.int_crm_contacts__normalised "
                "where email_match_key in (select unnest(?))",
                [list(JUNK_EMAILS)],
            ).fetchall()
        ]
        con.execute(
            "update marts.dim_customer_identity_map set customer_id = 'cus_planted' where node_key in (select unnest(?))",
            [junk],
        )
        failing = con.execute(gate).df()
    assert failing["customer_id"].tolist() == ["cus_planted"], failing
    assert failing["match_clusters"].iloc[0] > 5 and failing["crm_records"].iloc[0] == len(junk)


def test_email_click_links_the_landing_device_to_the_recipient_only(world: World):
    """A tracked email link's token (mos_eid) ties the landing device to the recipient's customer: every such
    link joins a device to its own person, it reaches devices nothing else identified, and those devices'
    sessions become known to be the customer's from the end of the first click session on them."""
    truth = pd.read_csv(world.settings.truth_dir / "identity_truth.csv", dtype=str, keep_default_na=False)
    person = {
        truth_node_key(s, r): e for s, r, e in zip(truth["source"], truth["source_record_id"], truth["true_entity_id"])
    }
    people = pd.read_csv(world.settings.truth_dir / "people.csv", usecols=["person_id", "marketing_email"])
    with world.connect() as con:
        links = con.execute("""
            select edges.node_key_a as device, edges.node_key_b as email, map.edge_types
            from intermediate.int_identity__edges as edges
            inner join marts.dim_customer_identity_map as map on edges.node_key_a = map.node_key
            where edges.edge_type = 'email_click'
        """).df()
        key_of = dict(
            con.execute(
                f"select address, {email_match_key_sql('address')} from (select unnest(?) as address)",
                [people["marketing_email"].tolist()],
            ).fetchall()
        )
        sessions = con.execute("""
            select count(*) filter (where device_email_click_at is not null and not is_identified_device),
                   count(*) filter (where device_email_click_at > session_end_at)
            from intermediate.int_customer_sessions__mapped
        """).fetchall()[0]
    email_person = {f"email:{key_of[a]}": p for p, a in zip(people["person_id"], people["marketing_email"])}
    assert len(links) >= 10
    assert all(person[d] == email_person[e] for d, e in zip(links["device"], links["email"]))
    assert (~links["edge_types"].str.contains("identify")).sum() >= 5  # devices no sign-up or log-in identified
    only_by_click, before_the_click = sessions
    assert only_by_click >= 5 and before_the_click >= 1
