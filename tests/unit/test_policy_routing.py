"""Lead routing on a small DuckDB file built here: first match wins with a catch-all, owners keep their accounts,
weighted round robin with capacity skipping unavailable reps, routed once, re-runs route only new leads."""

from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mos_pipelines.configuration import DOMAINS, load_policy, load_transform
from mos_pipelines.policy import routing

NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(days=1)
BANDS = load_transform(DOMAINS["transform"].file).mos__marketing_customer_segments

POLICY = """
routing:
  lead_stages: [lead, mql, sql]
  ownership: {from_assignments: true, owner_table: policy.account_owners, owner_role: AE}
  teams:
    ae:
      role: AE
      reps:
        - {id: ae_1, weight: 1, capacity: 100}
        - {id: ae_2, weight: 1, capacity: 100}
    bdr:
      role: BDR
      reps:
        - {id: bdr_heavy, weight: 3, capacity: 1000}
        - {id: bdr_light, weight: 1, capacity: 1000}
        - {id: bdr_away, weight: 5, capacity: 1000, available: false}
        - {id: bdr_small, weight: 4, capacity: 2}
  rules:
    - {name: owned_account, when: {owned: true}, to: owner}
    - {name: tier_a, when: {tier: [A]}, to: ae, reroute: true}
    - {name: catch_all, to: bdr}
"""


@pytest.fixture
def settings(tmp_path: Path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return load_policy(path).routing


def lead_frame(n: int, tier: str = "C", account: bool = False, start: int = 0) -> pd.DataFrame:
    ids = [f"p{i:04d}" for i in range(start, start + n)]
    return pd.DataFrame(
        {
            "customer_id": ids,
            "account_key": [f"acct{i}" if account else None for i in range(start, start + n)],
            "lifecycle_stage": "lead",
            "tier": tier,
            "region": "NA",
            "account_contact_count": 1,
            "first_seen_at": [
                datetime.datetime(2026, 1, 1) + datetime.timedelta(minutes=i) for i in range(start, start + n)
            ],
        }
    )


def warehouse(leads: pd.DataFrame, stages: dict[str, str] | None = None) -> duckdb.DuckDBPyConnection:
    """A warehouse with the lifecycle, features and ICP tables routing reads (``stages``: non-lead customers)."""
    con = duckdb.connect()
    con.execute("create schema marts; create schema policy")
    write_leads(con, leads, stages)
    return con


def write_leads(con: duckdb.DuckDBPyConnection, leads: pd.DataFrame, stages: dict[str, str] | None = None) -> None:
    others = pd.DataFrame(
        {
            "customer_id": list((stages or {}).keys()),
            "account_key": None,
            "lifecycle_stage": list((stages or {}).values()),
            "tier": "A",
            "region": "NA",
            "account_contact_count": 1,
            "first_seen_at": datetime.datetime(2026, 1, 1),
        }
    )
    everyone = pd.concat([leads, others], ignore_index=True)
    con.register("_all", everyone)
    con.execute(
        "create or replace table marts.dim_customer_lifecycle as select customer_id, account_key, lifecycle_stage from _all"
    )
    con.execute(
        "create or replace table marts.dim_customer_features as "
        "select customer_id, account_key, region, account_contact_count, first_seen_at from _all"
    )
    con.execute("create or replace table policy.icp_scores as select customer_id, tier from _all")
    con.unregister("_all")


def current(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute("select * from policy.routing_assignments where is_current order by customer_id").df()


def test_every_lead_is_routed_exactly_once_with_the_rule_that_fired(settings):
    leads = pd.concat([lead_frame(30, tier="A"), lead_frame(50, tier="C", start=30)], ignore_index=True)
    con = warehouse(leads, stages={"cust": "customer", "visitor": "visitor"})
    outcome = routing.run(con, settings, BANDS, "v1", NOW)
    rows = con.execute("select * from policy.routing_assignments").df()
    assert sorted(rows["customer_id"]) == sorted(leads["customer_id"])  # each lead once, non-leads never
    assert rows["customer_id"].is_unique and not outcome.waiting
    by_tier = rows.set_index("customer_id")
    assert set(by_tier.loc[leads.customer_id[:30], "rule"]) == {"tier_a"}
    assert set(by_tier.loc[leads.customer_id[:30], "role"]) == {"AE"}
    assert set(by_tier.loc[leads.customer_id[30:], "rule"]) == {"catch_all"}
    assert set(by_tier.loc[leads.customer_id[30:], "role"]) == {"BDR"}
    assert rows["reason"].str.startswith("rule ").all() and set(rows["policy_version"]) == {"v1"}


def test_round_robin_follows_weights_respects_capacity_and_skips_unavailable_reps(settings):
    con = warehouse(lead_frame(82))
    routing.run(con, settings, BANDS, "v1", NOW)
    counts = Counter(current(con)["rep_id"])
    assert "bdr_away" not in counts  # unavailable: never picked, whatever its weight
    assert counts["bdr_small"] == 2  # capacity 2, although its weight would give it 41
    assert counts["bdr_heavy"] == 60 and counts["bdr_light"] == 20  # the other 80 split 3 : 1
    assert counts.total() == 82


def test_a_team_with_no_room_leaves_leads_waiting_with_the_reason(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace(", available: false", "").replace("capacity: 1000}", "capacity: 1}"))
    settings = load_policy(path).routing
    con = warehouse(lead_frame(10))
    outcome = routing.run(con, settings, BANDS, "v1", NOW)
    assert len(current(con)) == 5  # 1 + 1 + 1 (capacity) + 2 (bdr_small)
    assert len(outcome.waiting) == 5
    assert "at capacity" in outcome.waiting[0].reason and outcome.waiting[0].team == "bdr"
    # capacity counts open leads: once those leads become customers, the waiting ones are routed
    done = lead_frame(10)
    done.loc[done.customer_id.isin(current(con).customer_id), "lifecycle_stage"] = "customer"
    write_leads(con, done)
    again = routing.run(con, settings, BANDS, "v1", LATER)
    assert len(again.new) == 5 and not again.waiting


def test_an_owned_accounts_leads_go_to_its_owner(settings):
    leads = pd.DataFrame(
        {
            "customer_id": ["first", "second", "third", "fourth"],
            "account_key": ["acme", "acme", "globex", "initech"],
            "lifecycle_stage": "lead",
            "tier": ["A", "C", "C", "C"],
            "region": "NA",
            "account_contact_count": 3,
            "first_seen_at": [datetime.datetime(2026, 1, d) for d in (1, 2, 3, 4)],
        }
    )
    con = warehouse(leads)
    # globex is owned in the CRM (owner table); acme becomes owned by the AE its first lead goes to
    con.execute("create table policy.account_owners as select 'globex' as account_key, 'ae_2' as owner")
    routing.run(con, settings, BANDS, "v1", NOW)
    rows = current(con).set_index("customer_id")
    assert rows.loc["first", "rule"] == "tier_a"
    acme_owner = rows.loc["first", "rep_id"]
    assert (rows.loc["second", "rule"], rows.loc["second", "rep_id"]) == ("owned_account", acme_owner)
    assert (rows.loc["third", "rule"], rows.loc["third", "rep_id"], rows.loc["third", "role"]) == (
        "owned_account",
        "ae_2",
        "AE",
    )
    assert "owner table" in rows.loc["third", "reason"]
    assert rows.loc["fourth", "rule"] == "catch_all"  # initech has no owner
    # a later lead of acme, in a later run, keeps the owner too
    write_leads(con, pd.concat([leads, leads.iloc[[1]].assign(customer_id="fifth")], ignore_index=True))
    routing.run(con, settings, BANDS, "v1", LATER)
    assert current(con).set_index("customer_id").loc["fifth", "rep_id"] == acme_owner


def test_a_second_run_routes_only_new_leads_and_keeps_earlier_assignments(settings):
    con = warehouse(lead_frame(20))
    routing.run(con, settings, BANDS, "v1", NOW)
    before = current(con)
    write_leads(con, lead_frame(26))  # six new leads
    outcome = routing.run(con, settings, BANDS, "v2", LATER)
    assert sorted(outcome.new["customer_id"]) == [f"p{i:04d}" for i in range(20, 26)]
    assert outcome.kept == 20
    after = current(con)
    kept = after[after.customer_id.isin(before.customer_id)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before)  # same rep, time, rule and version as routed the first time
    assert len(con.execute("select * from policy.routing_assignments").df()) == 26
    assert routing.run(con, settings, BANDS, "v2", LATER).new.empty  # nothing new: nothing routed


def test_the_same_warehouse_routes_the_same_way(settings):
    leads = lead_frame(40)
    first, second = warehouse(leads), warehouse(leads.sample(frac=1, random_state=3))  # row order differs
    routing.run(first, settings, BANDS, "v1", NOW)
    routing.run(second, settings, BANDS, "v1", NOW)
    columns = ["assignment_id", "customer_id", "rep_id", "rule"]
    pd.testing.assert_frame_equal(current(first)[columns], current(second)[columns])


def test_a_reroute_rule_takes_a_lead_that_now_matches_it_and_keeps_the_old_row(settings):
    con = warehouse(lead_frame(3))
    routing.run(con, settings, BANDS, "v1", NOW)
    assert set(current(con)["role"]) == {"BDR"}
    promoted = lead_frame(3)
    promoted.loc[0, "tier"] = "A"
    write_leads(con, promoted)
    outcome = routing.run(con, settings, BANDS, "v1", LATER)
    assert list(outcome.new["customer_id"]) == ["p0000"] and len(outcome.superseded) == 1
    history = con.execute(
        "select rule, role, is_current, superseded_by from policy.routing_assignments where customer_id = 'p0000' "
        "order by assigned_at"
    ).fetchall()
    new_id = outcome.new["assignment_id"].iloc[0]
    assert history == [("catch_all", "BDR", False, new_id), ("tier_a", "AE", True, None)]
    assert "rerouted from" in outcome.new["reason"].iloc[0]
    # the catch-all does not reroute: a lead that drops back to tier C keeps its AE
    write_leads(con, lead_frame(3))
    assert routing.run(con, settings, BANDS, "v1", LATER).new.empty


def test_an_unavailable_owner_does_not_take_the_lead_the_next_rule_does(settings):
    leads = lead_frame(2, account=True)
    con = warehouse(leads)
    con.execute(
        "create table policy.account_owners as select * from (values ('acct0', 'bdr_away'), ('acct1', 'ae_1')) "
        "t(account_key, owner)"
    )
    routing.run(con, settings, BANDS, "v1", NOW)
    rows = current(con).set_index("customer_id")
    assert (rows.loc["p0001", "rule"], rows.loc["p0001", "rep_id"]) == ("owned_account", "ae_1")
    assert rows.loc["p0000", "rule"] == "catch_all" and rows.loc["p0000", "rep_id"] != "bdr_away"


def test_an_owner_keeps_the_accounts_leads_beyond_capacity_and_the_load_says_so(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("{id: ae_1, weight: 1, capacity: 100}", "{id: ae_1, weight: 1, capacity: 1}"))
    settings = load_policy(path).routing
    leads = lead_frame(3).assign(account_key="acme")
    con = warehouse(leads)
    con.execute("create table policy.account_owners as select 'acme' as account_key, 'ae_1' as owner")
    routing.run(con, settings, BANDS, "v1", NOW)
    assert set(current(con)["rep_id"]) == {"ae_1"}
    load = routing.rep_load(con, settings).set_index("rep_id")
    assert (load.loc["ae_1", "open_leads"], load.loc["ae_1", "capacity"]) == (3, 1)
    assert load.loc["ae_1", "over_capacity"] and load.loc["ae_1", "team"] == "ae"
