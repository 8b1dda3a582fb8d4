"""The policy assets through Dagster on a small warehouse file built here (no world build): each writes its
table with the policy version, the skipped parts are reported, and a second run routes nothing new."""

from __future__ import annotations

import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mos_pipelines.configuration import DOMAINS, load_policy


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(DOMAINS["policy"].env, raising=False)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute(
        """
        create schema marts;
        create table marts.dim_customer_features as
            select 'c' || i as customer_id, 'domain:acct' || (i % 7) || '.com' as account_key,
                   case when i % 3 = 0 then 'saas' else 'retail' end as industry,
                   (i % 7) + 1 as account_contact_count,
                   case when i % 2 = 0 then 'EU' else 'NA' end as region,
                   case when i % 2 = 0 then 'DE' else 'US' end as country_code,
                   case when i % 4 = 0 then 'marketer' else 'engineer' end as persona,
                   case when i % 5 = 0 then 'vp' else 'manager' end as seniority,
                   timestamp '2026-03-01' - (i * interval 1 hour) as first_seen_at,
                   timestamp '2026-03-01' as as_of_at
            from range(60) t(i);
        create table marts.dim_customer_lifecycle as
            select customer_id, account_key,
                   case when i % 4 = 0 then 'customer' else 'lead' end as lifecycle_stage
            from (select customer_id, account_key, row_number() over (order by customer_id) as i
                  from marts.dim_customer_features);
        create table marts.dim_customer_consents as
            select customer_id, 'email_marketing' as purpose, true as is_consented from marts.dim_customer_features;
        create table marts.fct_touchpoints as
            select 'c' || (i % 60) as customer_id, 'session' as touch_type,
                   timestamp '2026-03-01' - (i * interval 3 hour) as touched_at
            from range(300) t(i);
        """
    )  # no marts.fct_conversions: the sign-up and demo signals are skipped with their reason
    con.close()
    return tmp_path


def materialize(home: Path) -> dg.ExecuteInProcessResult:
    from mos_pipelines.defs.policy import assets
    from mos_pipelines.defs.resources import MosHome

    return dg.materialize(
        [assets.icp_scores, assets.routing_assignments, assets.contact_eligibility, assets.next_best_action],
        resources={"mos": MosHome(mos_home=str(home))},
        instance=dg.DagsterInstance.ephemeral(),
    )


def test_the_policy_assets_write_their_tables_with_the_version(home: Path):
    version = load_policy().version()
    result = materialize(home)
    assert result.success
    icp_meta = result.asset_materializations_for_node("policy__icp_scores")[0].metadata
    assert icp_meta["policy_version"].value == version and icp_meta["dagster/row_count"].value == 60
    assert "signal:sign_ups: marts.fct_conversions does not exist" in icp_meta["skipped_parts"].value
    [parts_check] = [c for c in result.get_asset_check_evaluations() if c.asset_key.path == ["policy", "icp_scores"]]
    assert not parts_check.passed  # a warning, never blocking
    routed = result.asset_materializations_for_node("policy__routing_assignments")[0].metadata
    assert routed["routed"].value == 45 and routed["waiting"].value == 0 and routed["reps_over_capacity"].value == 0

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    versions = {
        table: con.execute(f"select distinct policy_version from policy.{table}").fetchall()
        for table in ("icp_scores", "routing_assignments", "contact_eligibility")
    }
    assert versions == {table: [(version,)] for table in versions}
    assert con.execute("select count(*) from policy.contact_eligibility").fetchone() == (60 * 4,)
    assert con.execute("select count(*) from ops.skipped_parts where asset = 'policy/icp_scores'").fetchone() == (2,)
    # the next best action: one decision per person, every candidate explained, same version (no conversions mart)
    decided = result.asset_materializations_for_node("decisions__next_best_action")[0].metadata
    assert decided["dagster/row_count"].value == 60 and decided["policy_version"].value == version
    assert con.execute("select count(*) from decisions.explanations").fetchone() == (60 * 4,)
    assert con.execute("select count(distinct policy_version) from decisions.next_best_action").fetchone() == (1,)
    first = con.execute("select customer_id, rep_id from policy.routing_assignments order by 1").fetchall()
    con.close()

    again = materialize(home)
    assert again.asset_materializations_for_node("policy__routing_assignments")[0].metadata["routed"].value == 0
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    assert con.execute("select customer_id, rep_id from policy.routing_assignments order by 1").fetchall() == first
    con.close()


def test_the_assets_read_the_applied_policy(home: Path, monkeypatch: pytest.MonkeyPatch):
    from mos_pipelines.defs.policy import assets
    from mos_pipelines.defs.resources import MosHome
    from mos_pipelines.policy import change
    from mos_pipelines.policy.active import active_file

    override = home / "proposal.yaml"
    override.write_text("contact:\n  quiet_hours: {start: '22:00', end: '07:00'}\n")
    applied = load_policy(override)
    target = active_file(home)
    target.parent.mkdir(parents=True)
    target.write_text(change.active_yaml(applied, override, "0" * 64, datetime.datetime(2026, 3, 1)))
    monkeypatch.setenv(DOMAINS["policy"].env, str(home / "ignored.yaml"))  # an applied policy wins over it
    result = dg.materialize(
        [assets.icp_scores], resources={"mos": MosHome(mos_home=str(home))}, instance=dg.DagsterInstance.ephemeral()
    )
    metadata = result.asset_materializations_for_node("policy__icp_scores")[0].metadata
    assert metadata["policy_version"].value == applied.version() != load_policy(DOMAINS["policy"].file).version()
