"""Activation on a generated world, through dbt and Dagster for real.

The full build makes the sync models (consent-filtered, with the consent gate as a blocking check);
each destination's sensor asks for one run per materialization of its sync model, with a key derived
from that materialization; deliveries launched through Dagster send each change once (a second run
sends nothing); copy with a discount waits for approval. (A failed gate stopping activation is tested
on the volume-drop world of test_quality_gates.py.)
Local servers: an http.server on 127.0.0.1 for the CRM webhook and Slack; email goes to the outbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mos_pipelines.activation import content
from mos_pipelines.activation.ledger import utcnow
from mos_pipelines.runner import load_definitions, run_activation
from tests.activation_servers import WebhookServer, activation_config_env, local_activation_config
from tests.integration.conftest import World, use_home

pytestmark = pytest.mark.integration

SYNC_PURPOSES = {
    "sync_email__nurture": "email_marketing",
    "sync_crm__lifecycle_stages": "email_marketing",
    "sync_ads__audience_members": "ad_personalization",
}


@pytest.fixture(scope="module")
def world(world_copy: World) -> World:
    """This module writes (it runs assets again, records deliveries): a private copy of the shared world."""
    return world_copy


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture(scope="module")
def activation_config(tmp_path_factory: pytest.TempPathFactory, hook: WebhookServer) -> Iterator[Path]:
    """The bundled config with the CRM and Slack webhooks pointed at the local server."""
    path = local_activation_config(tmp_path_factory.mktemp("activation") / "activation.yaml", hook.url)
    with activation_config_env(path):
        yield path


def sensor_tick(world: World, destination: str, cursor: str | None = None):
    use_home(world.settings)
    definitions = load_definitions()
    sensor = definitions.resolve_sensor_def(f"activate__{destination}_sensor")
    context = dg.build_sensor_context(instance=dg.DagsterInstance.get(), definitions=definitions, cursor=cursor)
    return sensor(context)


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_sync_models_hold_only_customers_with_granted_consent_and_pass_the_consent_gate(world: World):
    assert world.first_run.success, world.first_run.failures
    with world.connect() as con:
        for model, purpose in SYNC_PURPOSES.items():
            total, consented = con.execute(
                f"""
                select count(*), count(*) filter (where c.status = 'granted')
                from activation.{model} s
                left join marts.dim_customer_consents c on s.customer_id = c.customer_id and c.purpose = ?""",
                [purpose],
            ).fetchall()[0]
            assert total == consented, model
        assert con.execute("select count(*) from activation.sync_email__nurture").fetchall()[0][0] > 0
        variants = {
            r[0] for r in con.execute("select distinct variant_id from activation.sync_email__nurture").fetchall()
        }
        arms = {
            r[0]
            for r in con.execute(
                "select variant_id from staging.stg_marketing__campaign_variants "
                "where campaign_id = 'em_trial_nurture' and not is_holdout"
            ).fetchall()
        }
        assert variants and variants <= arms  # the holdout never
        sources = {
            r[0]
            for r in con.execute("select distinct assignment_source from activation.sync_email__nurture").fetchall()
        }
        assert sources == {"experiments.assignments"}  # the full build writes the experiments' assignments
        held_out_sent = con.execute("""
            select count(*) from activation.sync_email__nurture s
            inner join experiments.assignments a
                on a.experiment_id = 'em_trial_nurture' and a.unit_id = lower(trim(s.email_address)) and a.is_holdout
        """).fetchall()[0][0]
        assert held_out_sent == 0
        # a person is contacted only through what their next best action chose (the latest decision day)
        latest = "(select max(decision_date) from decisions.next_best_action)"
        for model, action, where in (
            ("sync_email__nurture", "nurture_email", "true"),
            ("sync_ads__audience_members", "paid_retargeting", "s.member_source <> 'lifecycle'"),
        ):
            outside = con.execute(f"""
                select count(*) from activation.{model} s
                left join decisions.next_best_action d
                    on d.customer_id = s.customer_id and d.decision_date = {latest} and d.action = '{action}'
                where {where} and d.customer_id is null""").fetchall()[0][0]
            assert outside == 0, model
        leads_not_handed = con.execute("""
            select count(*) from activation.sync_crm__lifecycle_stages s
            left join (select distinct customer_id from decisions.next_best_action where action = 'route_to_sales') d
                on d.customer_id = s.customer_id
            where s.lifecycle_stage in ('lead', 'mql', 'sql', 'opportunity') and d.customer_id is null""").fetchall()[
            0
        ][0]
        assert leads_not_handed == 0
        decided = con.execute(
            "select count(*) from decisions.next_best_action where action = 'nurture_email'"
        ).fetchall()[0][0]
        assert decided > 0
        gates = dict(
            con.execute(
                "select asset || ':' || check_name, passed from ops.quality_results where check_name like 'consent_%'"
            ).fetchall()
        )
    assert gates == {
        "activation/sync_email__nurture:consent_email_marketing": True,
        "activation/sync_crm__lifecycle_stages:consent_email_marketing": True,
        "activation/sync_ads__audience_members:consent_ad_personalization": True,
    }


def test_sensor_asks_for_one_run_per_materialization_with_a_key_derived_from_it(world: World):
    first = sensor_tick(world, "email__nurture")
    storage_id = (
        dg.DagsterInstance.get()
        .fetch_materializations(dg.AssetKey(["activation", "sync_email__nurture"]), limit=1)
        .records[0]
        .storage_id
    )
    (request,) = first.run_requests
    assert request.run_key == f"email__nurture:{storage_id}"
    assert json.loads(first.cursor) == {"storage_id": storage_id}
    second = sensor_tick(world, "email__nurture", cursor=first.cursor)  # the same materialization again
    assert isinstance(second, dg.SkipReason) and "no new materialization" in second.skip_message
    again = sensor_tick(world, "email__nurture")  # a tick that lost its cursor asks for the same run key
    assert again.run_requests[0].run_key == request.run_key


def test_deliveries_through_dagster_send_each_change_once_and_hold_unapproved_discounts(
    world: World, hook: WebhookServer, activation_config: Path
):
    use_home(world.settings)
    home = world.settings.mos_home
    outcomes = {o.destination: o for o in run_activation()}
    assert all(o.launched and o.success for o in outcomes.values()), [
        (o.destination, o.reason) for o in outcomes.values()
    ]
    with world.connect() as con:
        rows = {m: con.execute(f"select count(*) from activation.{m}").fetchall()[0][0] for m in SYNC_PURPOSES}
        held = con.execute("select count(*) from activation.sync_email__nurture where variant_id = 'B'").fetchall()[0][
            0
        ]
        phones = [
            r[0]
            for r in con.execute(
                "select phone_e164 from activation.sync_ads__audience_members where phone_e164 is not null"
            ).fetchall()
        ]
        # the bundled config has the LLM layer write each variant's copy once (offline provider: the template)
        copies = con.execute("select variant_id, renderer, flagged from activation.variant_copy").fetchall()
        copy_calls = con.execute(
            "select count(*) from ops.llm_calls where task = 'email_copy' and outcome = 'ok'"
        ).fetchall()[0][0]
    assert copies and {(r[1], r[2]) for r in copies} == {("mos-offline/copywriter", False)}
    assert copy_calls == len(copies)
    outbox = files_under(home / "activation" / "outbox" / "email__nurture")
    email = outcomes["email__nurture"].metadata
    assert held > 0 and email["held_for_approval"] == held  # variant B states a discount
    assert len(outbox) == email["acknowledged"] == rows["sync_email__nurture"] - held
    crm = [r for r in hook.requests if r.body.get("destination") == "crm__lifecycle_stages"]
    assert len(crm) == rows["sync_crm__lifecycle_stages"] == outcomes["crm__lifecycle_stages"].metadata["acknowledged"]
    assert len({r.headers["idempotency-key"] for r in crm}) == len(crm)
    exports = files_under(home / "activation" / "audiences")
    assert exports and rows["sync_ads__audience_members"] > 0
    for path in exports:
        text = path.read_text()
        assert "@" not in text and not any(p in text or p.lstrip("+") in text for p in phones), path

    # an unchanged re-run sends nothing
    requests_before = len(hook.requests)
    rerun = {o.destination: o for o in run_activation()}
    assert all(o.metadata["changes"] == 0 for o in rerun.values())
    assert len(hook.requests) == requests_before and files_under(home / "activation" / "audiences") == exports
    assert len(files_under(home / "activation" / "outbox" / "email__nurture")) == len(outbox)
    with world.connect() as con:  # the kept copy was reused: no new model call
        assert (
            con.execute("select count(*) from ops.llm_calls where task = 'email_copy'").fetchall()[0][0] == copy_calls
        )

    # approving the discount copy releases the recipients who waited for it, once
    with duckdb.connect(str(world.settings.warehouse_path)) as con:
        (pending,) = content.list_approvals(con, "pending")["approval_id"].tolist()
        content.decide(con, pending, "approved", "test", "pricing confirmed", utcnow())
    (released,) = run_activation(["email__nurture"])
    assert released.metadata["acknowledged"] == held and released.metadata["held_for_approval"] == 0
    assert len(files_under(home / "activation" / "outbox" / "email__nurture")) == rows["sync_email__nurture"]


def test_merge_points_assignments_decide_the_variant_and_slack_posts_an_insight_once(world: World):
    """The merge points with the experiments and insights capabilities. When `experiments.assignments`
    (experiment_id = campaign, unit_id = trimmed lower-cased address, variant_id, is_holdout) exists, it
    decides the variant, and holdout units are not in the sync model. An insight the hub notified to
    several readers is posted to Slack once."""
    from mos_pipelines.insights.insight_tables import ensure_tables

    with duckdb.connect(str(world.settings.warehouse_path)) as con:
        ensure_tables(con)
        con.execute("update insights.notifications set status = 'seen' where status = 'new'")
        for reader, rank in (("performance_marketer", 3), ("lifecycle_marketer", 1), ("marketing_ops", 2)):
            con.execute(
                "insert into insights.notifications (notification_id, created_at, source, severity, subject, title, "
                "message, status, reader_id, insight_id, rank) values (?, now(), 'insights', 'info', 'email', "
                "'Shared insight', 'one insight, three readers', 'new', ?, 'ins-shared', ?)",
                [f"n-{reader}", reader, rank],
            )

        units = [
            r[0]
            for r in con.execute(
                "select lower(trim(email_address)) from activation.sync_email__nurture order by 1"
            ).fetchall()
        ]
        con.execute("create schema if not exists experiments")
        con.execute(
            "create or replace table experiments.assignments (experiment_id varchar, unit_id varchar, segment varchar, "
            "is_holdout boolean, variant_id varchar, allocation_date date)"
        )
        rows = [
            ("em_trial_nurture", unit, "NA", i % 4 == 0, "C" if i % 2 else "A", None) for i, unit in enumerate(units)
        ]
        con.executemany("insert into experiments.assignments values (?, ?, ?, ?, ?, ?)", rows)
    outcome = world.run("key:activation/sync_email__nurture or key:activation/sync_slack__top_notifications")
    assert outcome.success, outcome.failures
    with world.connect() as con:
        slack = con.execute("select notification_id, title from activation.sync_slack__top_notifications").fetchall()
        got = dict(
            con.execute("select lower(trim(email_address)), variant_id from activation.sync_email__nurture").fetchall()
        )
        sources = {
            r[0]
            for r in con.execute("select distinct assignment_source from activation.sync_email__nurture").fetchall()
        }
    assert got == {unit: variant for _, unit, _, holdout, variant, _ in rows if not holdout}
    assert sources == {"experiments.assignments"}
    assert slack == [("n-lifecycle_marketer", "Shared insight")]  # once, with its best rank
