"""Blocking quality gates on generated worlds, built through Dagster for real.

A clean world passes every gate; a world with 10 % of events missing both identifiers fails the
missing-identifier gate on raw/events and nothing downstream (no dbt model) materializes in that
run; a world with a 40 % traffic drop on one day fails the volume gate on marts/fct_events, and
the models downstream of it (the second dbt step) are not built in that run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import dagster as dg
import pytest

from mos_pipelines.runner import run_assets
from mos_pipelines.simulation import WorldConfig, generate_world
from tests.integration.conftest import World, build_world, use_home

pytestmark = pytest.mark.integration

# Big enough that a 40 % traffic drop stands out from day-to-day sampling noise (the volume gate's
# noise allowance: here ~1,600 events a day, z about -5.7 on the dropped day), small enough to build
# in seconds. 8 days = a week of baseline plus one judged day; the drop world adds a 9th day.
GATE_WORLD = WorldConfig(seed=5, people=3000, days=8)
DROP_DAY = 8  # 2026-01-09, a Friday: compared with Friday 2026-01-02
GATES = ("missing_identifiers", "event_volume", "duplicate_customers", "ad_spend")


def _scenario(tmp: Path, text: str) -> Path:
    path = tmp / "scenario.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("gates") / "home", GATE_WORLD)


@pytest.fixture(scope="module")
def missing_ids(tmp_path_factory: pytest.TempPathFactory) -> World:
    home = tmp_path_factory.mktemp("missing_ids")
    scenario = _scenario(home, "name: missing_ids\ndirty:\n  events: {missing_id_rate: 0.10}\n")
    return build_world(home / "home", WorldConfig(seed=4, people=400, days=4, scenario=scenario))


@pytest.fixture(scope="module")
def volume_drop(clean: World, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The clean world one day later, ordinary traffic down 40 % on that day (scenario ``volume``):
    the daily incremental run only loads the new day's files."""
    scenario = _scenario(
        tmp_path_factory.mktemp("drop"),
        f"name: volume_drop\nvolume: [{{from_day: {DROP_DAY}, to_day: {DROP_DAY}, factor: 0.6}}]\n",
    )
    config = dataclasses.replace(GATE_WORLD, days=DROP_DAY + 1, scenario=scenario)
    use_home(clean.settings)
    generate_world(config, clean.settings.mos_home)
    return World(settings=clean.settings, config=config, first_run=run_assets(None))


def _events(world: World, event_type: dg.DagsterEventType) -> list:
    use_home(world.settings)
    instance = dg.DagsterInstance.get()
    return [
        r.event_log_entry.dagster_event
        for r in instance.get_records_for_run(world.first_run.run_id, of_type=event_type, limit=100000).records
    ]


def materialized(world: World) -> set[str]:
    return {e.asset_key.to_user_string() for e in _events(world, dg.DagsterEventType.ASSET_MATERIALIZATION)}


def gate_evaluations(world: World) -> dict[str, dg.AssetCheckEvaluation]:
    evaluations = [e.event_specific_data for e in _events(world, dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    return {e.check_name: e for e in evaluations if e.check_name in GATES}


def results_rows(world: World) -> dict[str, tuple]:
    with world.connect() as con:
        rows = con.execute(
            "select check_name, asset, passed, observed, threshold, details from ops.quality_results where run_id = ?",
            [world.first_run.run_id],
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def tables(world: World, schema: str) -> set[str]:
    with world.connect() as con:
        return {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [schema]
            ).fetchall()
        }


def test_clean_world_passes_every_gate_and_records_each_result(clean: World):
    assert clean.first_run.success, clean.first_run.failures
    evaluations = gate_evaluations(clean)
    assert set(evaluations) == set(GATES)
    assert all(e.passed for e in evaluations.values())
    rows = results_rows(clean)
    # the table-level gates, and the consent gates of the activation sync models
    assert set(rows) == set(GATES) | {"consent_email_marketing", "consent_ad_personalization"}
    assert all(passed for _, passed, *_ in rows.values())
    volume = json.loads(rows["event_volume"][4])
    assert volume["days_judged"] == 1 and volume["note"] is None  # 8 days: one day to judge
    assert rows["event_volume"][2] is not None
    assert {"marts/fct_sessions", "marts/dim_customers_snapshot"} <= materialized(clean)


def test_clean_world_activation_sensor_asks_for_a_run(clean: World):
    tick = activation_sensor_tick(clean, "email__nurture")
    assert isinstance(tick, dg.SensorResult) and tick.run_requests[0].run_key.startswith("email__nurture:")


def test_missing_identifiers_fail_the_gate_and_nothing_downstream_materializes(missing_ids: World):
    outcome = missing_ids.first_run
    assert not outcome.success
    assert "check raw/events:missing_identifiers" in outcome.failures
    evaluation = gate_evaluations(missing_ids)["missing_identifiers"]
    assert not evaluation.passed
    observed = evaluation.metadata["observed"].value
    assert 0.07 < observed < 0.12  # 10 missing per 100 valid rows: about 9 % of what was received
    assert "| event_date |" in evaluation.metadata["failing_examples"].value

    done = materialized(missing_ids)
    assert "raw/events" in done and "raw/orders" in done  # ingestion ran
    assert not [k for k in done if k.split("/")[0] in ("staging", "intermediate", "marts")]
    assert not tables(missing_ids, "marts") and not tables(missing_ids, "staging")

    _, passed, stored, threshold, details = results_rows(missing_ids)["missing_identifiers"]
    assert passed is False and stored == pytest.approx(observed) and "0.05" in threshold
    details = json.loads(details)
    # every day carries 10 % of bad rows: each day big enough to judge fails (min_rows, config/quality.yaml)
    assert details["days_failing"] == details["days"] - len(details["days_below_min_rows"]) > 0
    assert details["quarantined_examples"] and details["examples"]


def test_a_40_percent_drop_on_one_day_fails_the_volume_gate_and_blocks_downstream_models(volume_drop: World):
    outcome = volume_drop.first_run
    assert not outcome.success
    assert "check marts/fct_events:event_volume" in outcome.failures
    evaluation = gate_evaluations(volume_drop)["event_volume"]
    assert not evaluation.passed
    examples = evaluation.metadata["failing_examples"].value
    assert "2026-01-09" in examples and "2026-01-08" not in examples  # only the planted day fails
    (failing,) = evaluation.metadata["details"].value["examples"]
    assert failing["event_date"] == "2026-01-09" and failing["change"] < -0.25 and failing["noise_z"] < -3
    # the other gates passed: only the volume gate blocked
    assert all(e.passed for name, e in gate_evaluations(volume_drop).items() if name != "event_volume")

    done = materialized(volume_drop)
    assert {"raw/events", "marts/fct_events", "marts/dim_customers"} <= done  # the gated step ran
    assert "marts/fct_sessions" not in done and "marts/dim_customers_snapshot" not in done
    with volume_drop.connect() as con:
        last_event = con.execute("select max(occurred_at)::date from marts.fct_events").fetchall()[0][0]
        last_session = con.execute("select max(session_start_at)::date from marts.fct_sessions").fetchall()[0][0]
        (passed,) = con.execute(
            "select passed from ops.quality_results where run_id = ? and check_name = 'event_volume'", [outcome.run_id]
        ).fetchall()[0]
    assert str(last_event) == "2026-01-09" and str(last_session) < "2026-01-09"  # sessions still from the day before
    assert passed is False


def test_marking_the_dropped_day_expected_lets_the_gate_pass(volume_drop: World):
    import datetime

    from mos_pipelines.quality import gates

    with volume_drop.connect() as con:
        result = gates.event_volume(
            con,
            max_change=0.10,
            noise_z=3,
            min_history_days=8,
            expected_days={datetime.date(2026, 1, 9): "planted drop"},
        )
    assert result.passed and result.details["expected_days_exempt"] == [
        {"event_date": "2026-01-09", "reason": "planted drop"}
    ]


def activation_sensor_tick(world: World, destination: str):
    from mos_pipelines.runner import load_definitions

    use_home(world.settings)
    definitions = load_definitions()
    sensor = definitions.resolve_sensor_def(f"activate__{destination}_sensor")
    return sensor(dg.build_sensor_context(instance=dg.DagsterInstance.get(), definitions=definitions))


def test_after_the_failed_volume_gate_nothing_is_activated_and_every_sensor_says_why(
    volume_drop: World, tmp_path: Path
):
    """The sync models of the clean build were never delivered; the drop day's failed gate upstream of
    them keeps every delivery back: 0 messages, 0 requests, no audience file, and the reason on each tick."""
    from mos_pipelines.defs.activation.gating import delivery_key
    from mos_pipelines.runner import run_activation
    from tests.activation_servers import WebhookServer, activation_config_env, local_activation_config

    destinations = ("email__nurture", "crm__lifecycle_stages", "google_ads__audiences", "meta_ads__audiences")
    with WebhookServer() as hook, activation_config_env(local_activation_config(tmp_path / "a.yaml", hook.url)):
        for destination in destinations:
            tick = activation_sensor_tick(volume_drop, destination)
            assert isinstance(tick, dg.SkipReason), destination
            assert "marts/fct_events:event_volume failed" in tick.skip_message, tick.skip_message
        outcomes = {o.destination: o for o in run_activation(list(destinations))}
        requests = len(hook.requests)
    assert not any(o.launched for o in outcomes.values())
    assert all("marts/fct_events:event_volume failed" in o.reason for o in outcomes.values())
    activation_dir = volume_drop.settings.mos_home / "activation"
    assert not activation_dir.exists() or not [p for p in activation_dir.rglob("*") if p.is_file()]
    assert requests == 0
    instance = dg.DagsterInstance.get()
    assert all(instance.get_latest_materialization_event(delivery_key(d)) is None for d in destinations)
