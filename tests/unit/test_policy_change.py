"""`mos policy diff` and `mos policy apply` on a small DuckDB file built here: the diff writes nothing and predicts
exactly the tier, routing and eligibility changes that apply then writes; an invalid file changes nothing;
applying the active version again is a no-op; the assets and `mos policy show` read the applied policy."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from mos_pipelines.activation import ledger
from mos_pipelines.cli import app
from mos_pipelines.configuration import DOMAINS, ConfigError, load_policy, load_transform
from mos_pipelines.policy import change
from mos_pipelines.policy.active import active_file, load_active

NOW = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC)  # 13:00 in Berlin, 07:00 (quiet) in New York
BANDS = load_transform(DOMAINS["transform"].file).mos__marketing_customer_segments

# The base: the bundled policy with small AE teams, so some tier A/B leads wait for capacity.
BASE = """
routing:
  teams:
    ae_enterprise:
      role: AE
      reps: [{id: ae_avery, weight: 2, capacity: 4}, {id: ae_blake, weight: 1, capacity: 2}]
    ae_commercial:
      role: AE
      reps: [{id: ae_casey, weight: 1, capacity: 3}, {id: ae_devon, weight: 1, capacity: 3}]
    bdr_emea:
      role: BDR
      reps: [{id: bdr_emil, weight: 1, capacity: 200}, {id: bdr_fleur, weight: 1, capacity: 200}]
    bdr_global:
      role: BDR
      reps: [{id: bdr_gabe, weight: 2, capacity: 400}, {id: bdr_hana, weight: 1, capacity: 300}]
"""

# The proposal: a heavier fit weight (moves tiers), more AE capacity and a new reroute rule (routing), a tighter
# weekly email cap (eligibility), and a lower return an action must earn (decisions).
PROPOSED = """
icp:
  fit_rules:
    - {name: target_industry, column: industry, in: [saas, finance, healthcare], weight: 25}
    - {name: multi_contact_account, column: account_contact_count, min: 3, weight: 20}
    - {name: decision_maker, column: seniority, in: [c_level, vp, director], weight: 25}
    - {name: buying_persona, column: persona, in: [marketer, executive, operations], weight: 45}
    - {name: served_region, column: region, in: [NA, EU, UK], weight: 15}
routing:
  teams:
    ae_enterprise:
      role: AE
      reps: [{id: ae_avery, weight: 2, capacity: 4}, {id: ae_blake, weight: 1, capacity: 2}]
    ae_commercial:
      role: AE
      reps: [{id: ae_casey, weight: 1, capacity: 30}, {id: ae_devon, weight: 1, capacity: 30}]
    bdr_emea:
      role: BDR
      reps: [{id: bdr_emil, weight: 1, capacity: 200}, {id: bdr_fleur, weight: 1, capacity: 200}]
    bdr_global:
      role: BDR
      reps: [{id: bdr_gabe, weight: 2, capacity: 400}, {id: bdr_hana, weight: 1, capacity: 300}]
  rules:
    - {name: owned_account, when: {owned: true}, to: owner}
    - {name: tier_a_larger_accounts, when: {tier: [A], segment: [mid_account, large_account]}, to: ae_enterprise,
       reroute: true}
    - {name: tier_a_b_to_ae, when: {tier: [A, B]}, to: ae_commercial, reroute: true}
    - {name: eu_executives, when: {region: [EU], persona: [marketer]}, to: bdr_emea, reroute: true}
    - {name: emea_bdr, when: {region: [EU, UK]}, to: bdr_emea}
    - {name: catch_all, to: bdr_global}
contact:
  caps:
    per_channel:
      email: {per_day: 1, per_7_days: 1}
      webhook: {per_7_days: 2}
    all_channels: {per_day: 2, per_7_days: 4}
decisioning:
  min_return: 0.5
"""


@pytest.fixture(autouse=True)
def bundled_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DOMAINS["policy"].env, raising=False)


def build(home: Path) -> Path:
    """A warehouse of 80 customers: features, lifecycle, consents, touchpoints, orders and email sends."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        """
        create schema marts;
        create table marts.dim_customer_features as
            select 'c' || lpad(i::varchar, 3, '0') as customer_id, 'domain:acct' || (i % 11) || '.com' as account_key,
                   case when i % 3 = 0 then 'saas' else 'retail' end as industry,
                   (i % 5) + 1 as account_contact_count,
                   case when i % 2 = 0 then 'EU' else 'NA' end as region,
                   case when i % 2 = 0 then 'DE' else 'US' end as country_code,
                   case when i % 4 < 2 then 'marketer' else 'engineer' end as persona,
                   case when i % 5 = 0 then 'vp' else 'manager' end as seniority,
                   timestamp '2026-03-01' - (i * interval 1 hour) as first_seen_at,
                   timestamp '2026-03-01' as as_of_at
            from range(80) t(i);
        create table marts.dim_customer_lifecycle as
            select customer_id, account_key,
                   case when i % 6 = 0 then 'customer' when i % 6 = 1 then 'subscriber' else 'lead' end
                       as lifecycle_stage
            from (select customer_id, account_key, row_number() over (order by customer_id) as i
                  from marts.dim_customer_features);
        create table marts.dim_customer_consents as
            select customer_id, 'email_marketing' as purpose, true as is_consented from marts.dim_customer_features;
        create table marts.fct_touchpoints as
            select 'c' || lpad((i % 80)::varchar, 3, '0') as customer_id, 'session' as touch_type,
                   timestamp '2026-03-01' - ((i // 7) * interval 1 day) as touched_at
            from range(500) t(i);
        create table marts.fct_conversions as
            select 'c' || lpad((i * 13 % 80)::varchar, 3, '0') as customer_id,
                   case when i % 2 = 0 then 'order' else 'demo_request' end as conversion_type,
                   timestamp '2026-02-27' + (i * interval 1 hour) as converted_at
            from range(10) t(i);
        """
    )
    ledger.ensure_tables(con)
    sends = [
        (f"c{i:03d}", f"k{i}-{n}", NOW.replace(tzinfo=None) - datetime.timedelta(days=n + 1))
        for i in range(0, 80, 3)
        for n in range(i % 2 + 1)
    ]
    for customer, key, at in sends:
        con.execute(
            "insert into ops.activation_ledger (destination, record_key, customer_id, operation, payload_hash, "
            "idempotency_key, status, attempts, change_seq, is_present, first_seen_at, updated_at) "
            "values ('email__nurture', ?, ?, 'upsert', 'h', ?, 'acknowledged', 1, 1, true, ?, ?)",
            [key, customer, key, at, at],
        )
        con.execute(
            "insert into ops.activation_attempts (run_id, destination, channel, record_key, status, operation, "
            "attempted_at) values ('r', 'email__nurture', 'email', ?, 'acknowledged', 'upsert', ?)",
            [key, at],
        )
    con.close()
    return path


def policy_file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def do_apply(home: Path, file: Path, now: datetime.datetime = NOW) -> change.Applied:
    active = load_active(home).settings
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        return change.apply(con, home, active, load_policy(file), file, BANDS, now, "tester")
    finally:
        con.close()


def snapshot(path: Path) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            "tiers": con.execute(
                "select cast(customer_id as varchar) as customer_id, tier from policy.icp_scores"
            ).df(),
            "routing": change.routing_state(con),
            "eligibility": con.execute(
                "select customer_id, action, allowed, reasons from policy.contact_eligibility"
            ).df(),
            "assignments": con.execute(
                "select assignment_id, customer_id, rep_id, is_current from policy.routing_assignments order by 1"
            ).df(),
            "versions": con.execute("select policy_version from policy.versions order by 1").df(),
            "applied": con.execute("select * from policy.applied order by applied_at").df(),
            "decisions": con.execute(
                "select customer_id, action from decisions.next_best_action where decision_date = ?", [NOW.date()]
            ).df(),
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The warehouse with the base applied, the diff of the proposal (read-only), then the proposal applied."""
    with pytest.MonkeyPatch.context() as patch:  # module scope: the bundled policy, as in every test here
        patch.delenv(DOMAINS["policy"].env, raising=False)
        folder = tmp_path_factory.mktemp("policy_change")
        home = folder / "home"
        path = build(home)
        base, proposed = policy_file(folder, "base.yaml", BASE), policy_file(folder, "proposed.yaml", PROPOSED)
        first = do_apply(home, base)
        before = snapshot(path)
        stamp = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        con = duckdb.connect(str(path), read_only=True)
        predicted = change.diff(con, load_active(home).settings, load_policy(proposed), BANDS, NOW)
        con.close()
        after_diff = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        applied = do_apply(home, proposed)
        yield {
            "home": home,
            "path": path,
            "base": base,
            "proposed": proposed,
            "first": first,
            "before": before,
            "predicted": predicted,
            "unchanged": stamp == after_diff,
            "applied": applied,
            "after": snapshot(path),
        }


def test_the_diff_writes_nothing(world):
    assert world["unchanged"]  # the warehouse file's bytes and mtime, across the diff


def test_the_diff_predicts_exactly_the_changes_apply_makes(world):
    before, after, predicted = world["before"], world["after"], world["predicted"]
    assert predicted.from_version == world["first"].to_version
    assert predicted.to_version == load_policy(world["proposed"]).version() == world["applied"].to_version
    assert not predicted.baseline  # the stored tables were fresh: every change comes from the policy

    actual_tiers = change.compare_tiers(before["tiers"], after["tiers"])
    assert len(actual_tiers) > 0
    assert set(map(tuple, predicted.tiers[["customer_id", "from_tier", "to_tier"]].values)) == set(
        map(tuple, actual_tiers.values)
    )

    actual_routing = change.compare_routing(before["routing"], after["routing"])
    keys = ["customer_id", "change", *(f"{side}_{k}" for side in ("from", "to") for k in change.ROUTING_KEYS)]
    as_set = lambda frame: set(map(tuple, frame[keys].fillna("-").values))  # noqa: E731
    assert as_set(predicted.routing) == as_set(actual_routing)
    kinds = set(predicted.routing["change"])
    assert kinds == {"rerouted", "not yet routed"}  # reroute rules moved routed leads; waiting leads got reps
    assert set(predicted.routing["to_rule"]) >= {"eu_executives", "tier_a_b_to_ae"}
    # sticky: a routed lead moves only by a reroute rule
    rerouted = predicted.routing[predicted.routing["change"] == "rerouted"]
    assert set(rerouted["to_rule"]) <= {"tier_a_larger_accounts", "tier_a_b_to_ae", "eu_executives"}

    actual_eligibility = change.compare_eligibility(before["eligibility"], after["eligibility"])
    cols = ["customer_id", "action", "from_allowed", "to_allowed"]
    assert set(map(tuple, predicted.eligibility[cols].values)) == set(map(tuple, actual_eligibility[cols].values))
    assert [list(r) for r in predicted.eligibility["to_reasons"]] == [list(r) for r in actual_eligibility["to_reasons"]]
    actual_actions = change.compare_actions(before["decisions"], after["decisions"])
    assert len(actual_actions) > 0
    cols = ["customer_id", "from_action", "to_action"]
    assert set(map(tuple, predicted.actions[cols].values)) == set(map(tuple, actual_actions[cols].values))
    summary = predicted.summary()
    moved = summary["decisions"]
    assert moved["people_changing"] == len(actual_actions) and moved["sends"]
    assert set(moved["expected"]) == {"active", "proposed"}
    for side in moved["expected"].values():
        assert side["expected_conversions_low"] <= side["expected_conversions"] <= side["expected_conversions_high"]
    nurture = summary["eligibility"]["by_action"]["nurture_email"]
    assert nurture["allowed_to_blocked"] > 0
    assert "email cap 1/7 days reached" in nurture["newly_blocked_by"]
    assert summary["icp"]["customers_changing_tier"] == len(actual_tiers)
    json.dumps(summary)  # plain JSON for programs


def test_apply_records_the_version_who_when_and_the_file(world):
    after, applied = world["after"], world["applied"]
    assert applied.applied and world["first"].applied
    log = after["applied"]
    assert list(log["to_version"]) == [world["first"].to_version, applied.to_version]
    assert list(log["from_version"]) == [load_policy().version(), world["first"].to_version]
    last = log.iloc[-1]
    assert last["applied_by"] == "tester" and last["source_file"] == str(world["proposed"])
    assert last["file_sha256"] == hashlib.sha256(world["proposed"].read_bytes()).hexdigest()
    assert last["tiers_changed"] == len(world["predicted"].tiers)
    assert last["decisions_changed"] == len(world["predicted"].actions)
    assert applied.to_version in set(after["versions"]["policy_version"])
    # the active file is the proposal, complete: it reads back as the same version, alone
    active = load_active(world["home"])
    assert active.applied_file == active_file(world["home"]) and active.settings.version() == applied.to_version
    con = duckdb.connect(str(world["path"]), read_only=True)
    tables = {
        t: con.execute(f"select distinct policy_version from policy.{t}").fetchall()
        for t in ("icp_scores", "contact_eligibility")
    }
    con.close()
    assert tables == {t: [(applied.to_version,)] for t in tables}


def test_applying_the_active_version_again_changes_nothing(world):
    path = world["path"]
    stamp = (hashlib.sha256(path.read_bytes()).hexdigest(), active_file(world["home"]).read_bytes())
    again = do_apply(world["home"], world["proposed"], NOW + datetime.timedelta(hours=1))
    assert not again.applied and again.from_version == again.to_version == world["applied"].to_version
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), active_file(world["home"]).read_bytes()) == stamp


def test_an_invalid_proposal_is_refused_with_file_key_line_and_changes_nothing(world, tmp_path: Path):
    bad = policy_file(tmp_path, "bad.yaml", "contact:\n  caps:\n    all_channels: {per_day: -1}\n")
    path = world["path"]
    stamp = (hashlib.sha256(path.read_bytes()).hexdigest(), active_file(world["home"]).read_bytes())
    with pytest.raises(ConfigError) as error:
        load_policy(bad)
    assert (error.value.file, error.value.key, error.value.line) == (str(bad), "contact.caps.all_channels.per_day", 3)
    env = {"MOS_HOME": str(world["home"])}
    for command in (["policy", "apply", str(bad)], ["policy", "diff", "--proposed", str(bad)]):
        result = CliRunner().invoke(app, command, env=env)
        assert result.exit_code == 2, result.output
        assert "contact.caps.all_channels.per_day (line 3)" in result.output
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), active_file(world["home"]).read_bytes()) == stamp


def test_the_cli_diffs_and_shows_the_applied_policy(world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    env = {"MOS_HOME": str(world["home"])}
    back = policy_file(tmp_path, "back.yaml", BASE)  # the base again: the reverse of the last apply
    result = CliRunner().invoke(app, ["policy", "diff", "--proposed", str(back), "--json"], env=env)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["from_version"] == world["applied"].to_version
    assert payload["to_version"] == world["first"].to_version
    assert payload["icp"]["customers_changing_tier"] == len(world["predicted"].tiers)
    text = CliRunner().invoke(app, ["policy", "diff", "--proposed", str(back)], env=env)
    assert text.exit_code == 0, text.output
    assert "ICP tiers: " in text.output and "routing: " in text.output and "contact eligibility: " in text.output
    assert "next best action today: " in text.output and "expected extra conversions" in text.output
    monkeypatch.setenv(DOMAINS["policy"].env, str(back))
    shown = CliRunner().invoke(app, ["policy", "show"], env=env)
    assert f"policy version {world['applied'].to_version}" in shown.output
    assert str(active_file(world["home"])) in shown.output and "ignored" in shown.output


def test_a_failing_apply_leaves_the_warehouse_and_the_active_file_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home = tmp_path / "home"
    path = build(home)
    base = policy_file(tmp_path, "base.yaml", BASE)
    first = do_apply(home, base)
    before = snapshot(path)
    active_before = active_file(home).read_bytes()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(change.contact, "eligibility_table", broken)  # fails after the tiers and routing are written
    with pytest.raises(RuntimeError, match="disk is full"):
        do_apply(home, policy_file(tmp_path, "proposed.yaml", PROPOSED))
    after = snapshot(path)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])
    assert active_file(home).read_bytes() == active_before
    assert load_active(home).settings.version() == first.to_version
    assert [p.name for p in active_file(home).parent.iterdir()] == ["active.yaml"]  # no staged file left behind
