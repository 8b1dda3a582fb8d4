"""The build plan (``mos_pipelines.changes``): nothing changed → nothing runs; a change runs what is downstream of it."""

from __future__ import annotations

import os
from pathlib import Path

from mos_pipelines import changes
from mos_pipelines.changes import Last, Node, plan

# landing -> raw -> staging -> mart -> python asset; a second source feeding the mart; a gated branch.
NODES = {
    "raw/events": Node(inputs=("landing.events",)),
    "raw/orders": Node(inputs=("landing.orders",)),
    "staging/stg_events": Node(parents=("raw/events",), inputs=("dbt",), code_version="e1"),
    "staging/stg_orders": Node(parents=("raw/orders",), inputs=("dbt",), code_version="o1"),
    "marts/fct_orders": Node(parents=("staging/stg_orders",), inputs=("dbt",), code_version="f1"),
    "marts/dim_customers": Node(
        parents=("staging/stg_events", "staging/stg_orders"), inputs=("dbt",), code_version="d1"
    ),
    "ml/lookalike_scores": Node(parents=("marts/dim_customers",), inputs=("python",)),
}
FINGERPRINTS = {"landing.events": "e", "landing.orders": "o", "dbt": "d", "python": "p"}


def built(fingerprints=FINGERPRINTS) -> dict[str, Last]:
    """Every asset materialized by one run that read the latest of each parent."""
    return {
        key: Last(
            run_id="run-one",
            storage_id=i + 1,
            code_version=node.code_version,
            data_version=f"v1 {key}",
            fingerprints=dict(fingerprints),
            parents={p: f"v1 {p}" for p in node.parents},
        )
        for i, (key, node) in enumerate(NODES.items())
    }


def rematerialized(last: dict[str, Last], key: str, data_version: str) -> dict[str, Last]:
    """``key`` materialized again by another run, with ``data_version``."""
    mine = last[key]
    return {**last, key: Last("run-two", 99, mine.code_version, data_version, mine.fingerprints, mine.parents)}


def test_nothing_changed_nothing_runs_and_each_asset_names_the_run_it_is_current_since():
    result = plan(NODES, built(), FINGERPRINTS)
    assert result.nothing_to_do
    assert result.unchanged == {key: "run-one" for key in NODES}
    assert "nothing changed" in result.summary() and "run run-one" in result.summary()


def test_a_new_landing_file_runs_its_ingestion_and_everything_downstream_of_it_only():
    result = plan(NODES, built(), {**FINGERPRINTS, "landing.orders": "o2"})
    assert set(result.run) == {
        "raw/orders",
        "staging/stg_orders",
        "marts/fct_orders",
        "marts/dim_customers",
        "ml/lookalike_scores",
    }
    assert result.run["raw/orders"] == "landing.orders changed since run run-one"
    assert result.run["marts/dim_customers"] == "upstream staging/stg_orders runs"
    assert set(result.unchanged) == {"raw/events", "staging/stg_events"}


def test_never_materialized_missing_table_code_and_unrecorded_fingerprints_run():
    last = built()
    last["ml/lookalike_scores"] = None
    assert plan(NODES, last, FINGERPRINTS).run == {"ml/lookalike_scores": "never materialized"}
    assert set(plan(NODES, built(), FINGERPRINTS, missing={"marts/fct_orders"}).run) == {"marts/fct_orders"}
    edited = {**NODES, "marts/fct_orders": Node(parents=("staging/stg_orders",), inputs=("dbt",), code_version="f2")}
    assert plan(edited, built(), FINGERPRINTS).run == {"marts/fct_orders": "its code changed"}
    # a run launched without fingerprints (e.g. from the UI) counts as changed, once
    unrecorded = plan(NODES, built(fingerprints={}), FINGERPRINTS)
    assert set(unrecorded.run) == set(NODES)
    # configuration or code of the Python assets: only they (and what reads them) run
    assert set(plan(NODES, built(), {**FINGERPRINTS, "python": "p2"}).run) == {"ml/lookalike_scores"}


def test_an_upstream_materialized_since_with_other_data_reruns_what_read_the_older_data_only():
    last = rematerialized(built(), "marts/dim_customers", "v2")
    result = plan(NODES, last, FINGERPRINTS)
    assert result.run == {"ml/lookalike_scores": "upstream marts/dim_customers changed since (run run-two)"}
    # materialized again with the same data (an ingestion run that loaded nothing new): nothing to do
    assert plan(
        NODES, rematerialized(built(), "marts/dim_customers", "v1 marts/dim_customers"), FINGERPRINTS
    ).nothing_to_do


def test_a_passive_asset_runs_with_its_parent_without_making_its_children_run():
    nodes = {
        **NODES,
        "ops/sweep": Node(parents=("raw/events", "raw/orders"), inputs=("requests",), propagates=False),
        "staging/stg_orders": Node(parents=("raw/orders", "ops/sweep"), inputs=("dbt",), code_version="o1"),
        "staging/stg_events": Node(parents=("raw/events", "ops/sweep"), inputs=("dbt",), code_version="e1"),
    }
    last = {
        **built({**FINGERPRINTS, "requests": "r"}),
        "ops/sweep": Last("run-one", 50, None, "v1 ops/sweep", {**FINGERPRINTS, "requests": "r"}, {}),
    }
    last["staging/stg_orders"] = Last(
        "run-one",
        3,
        "o1",
        "v1 staging/stg_orders",
        last["raw/orders"].fingerprints,
        {"raw/orders": "v1 raw/orders", "ops/sweep": "v1 ops/sweep"},
    )
    last["staging/stg_events"] = Last(
        "run-one",
        4,
        "e1",
        "v1 staging/stg_events",
        last["raw/events"].fingerprints,
        {"raw/events": "v1 raw/events", "ops/sweep": "v1 ops/sweep"},
    )
    now = {**FINGERPRINTS, "requests": "r"}
    new_orders = plan(nodes, last, {**now, "landing.orders": "o2"})
    assert "ops/sweep" in new_orders.run and "staging/stg_orders" in new_orders.run
    assert "staging/stg_events" in new_orders.unchanged  # the sweep ran, but not for a new request
    new_request = plan(nodes, last, {**now, "requests": "r2"})
    assert {"ops/sweep", "staging/stg_orders", "staging/stg_events"} <= set(new_request.run)


def test_a_failed_blocking_check_upstream_blocks_instead_of_building_on_data_that_did_not_pass():
    last = rematerialized(built(), "marts/dim_customers", "v2")
    result = plan(NODES, last, FINGERPRINTS, failed_gates={"marts/dim_customers": "not_null_customer_id (run run-two)"})
    assert result.nothing_to_do and "not_null_customer_id" in result.blocked["ml/lookalike_scores"]
    # when the gated asset itself runs (new data), Dagster's blocking check decides in the run
    changed = plan(NODES, last, {**FINGERPRINTS, "landing.events": "e2"}, failed_gates={"marts/dim_customers": "x"})
    assert "ml/lookalike_scores" in changed.run and not changed.blocked


def test_landing_fingerprint_sees_a_new_or_rewritten_file_and_ignores_dot_files(tmp_path: Path):
    folder = tmp_path / "orders"
    assert changes.landing_fingerprint(folder) == changes.landing_fingerprint(tmp_path / "absent")
    folder.mkdir()
    (folder / "day1.csv").write_text("order_id\n1\n")
    first = changes.landing_fingerprint(folder)
    assert changes.landing_fingerprint(folder) == first
    (folder / ".partial").write_text("x")
    assert changes.landing_fingerprint(folder) == first
    (folder / "day2.csv").write_text("order_id\n2\n")
    second = changes.landing_fingerprint(folder)
    assert second != first
    os.utime(folder / "day2.csv", ns=(1, 1))
    assert changes.landing_fingerprint(folder) != second


def test_the_run_tags_carry_the_fingerprints_back():
    tags = changes.Plan(fingerprints=FINGERPRINTS).tags()
    assert changes.fingerprints_of_run({**tags, "other": "x"}) == FINGERPRINTS


def test_engine_settings_are_no_input_but_any_other_configuration_is(tmp_path: Path, monkeypatch):
    """A DuckDB memory limit (config/warehouse.yaml) changes speed, not results: the configuration fingerprint the
    Python assets read stays; an override of a setting that changes results moves it."""
    from mos_pipelines.defs.changes import _config
    from mos_pipelines.settings import Settings

    settings = Settings(mos_home=tmp_path)
    before = _config(settings)
    engine = tmp_path / "w.yaml"
    engine.write_text("duckdb: {memory_limit: 2GB}\n")
    monkeypatch.setenv("MOS_WAREHOUSE_CONFIG", str(engine))
    assert _config(settings) == before
    other = tmp_path / "e.yaml"
    other.write_text("assignment: {holdout_share: 0.2}\n")
    monkeypatch.setenv("MOS_EXPERIMENTS_CONFIG", str(other))
    assert _config(settings) != before


def test_the_dbt_engine_is_an_input_of_the_dbt_models(tmp_path: Path, monkeypatch):
    """Switching the dbt steps to Spark rebuilds every dbt model there (a Spark step reads its parents from Spark);
    DuckDB named explicitly is the fingerprint a DuckDB warehouse always had; a bad engine name is not a crash of the
    plan (the run says what is wrong)."""
    from mos_pipelines.defs.changes import _dbt
    from mos_pipelines.settings import Settings

    settings = Settings(mos_home=tmp_path)
    monkeypatch.delenv("MOS_ENGINE", raising=False)
    before = _dbt(settings)
    monkeypatch.setenv("MOS_ENGINE", "duckdb")
    assert _dbt(settings) == before
    monkeypatch.setenv("MOS_ENGINE", "spark")
    on_spark = _dbt(settings)
    assert on_spark != before
    monkeypatch.setenv("MOS_ENGINE", "oracle")
    assert _dbt(settings) not in (before, on_spark)
