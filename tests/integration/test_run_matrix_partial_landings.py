"""Landing zones that hold only part of the sources (a CRM export; events; orders and consent), and none: each
builds everything it can, or exits non-zero with one actionable line and no stack trace."""

from __future__ import annotations

import pytest

from tests.integration.run_matrix import (
    BUNDLED_LOOKALIKE,
    MatrixWorld,
    assert_clean_success,
    build,
    generate,
    keep_only,
    mos,
)

LOOKALIKE_CONFIG = BUNDLED_LOOKALIKE


def _partial(tmp_path_factory: pytest.TempPathFactory, name: str, sources: set[str]) -> MatrixWorld:
    home = tmp_path_factory.mktemp(name)
    generate(home, people=300, days=14)
    keep_only(home, sources)
    return build(home)


def test_a_crm_export_alone_becomes_customers_and_crm_syncs(tmp_path_factory: pytest.TempPathFactory) -> None:
    world = _partial(tmp_path_factory, "crm_only", {"crm_contacts"})
    assert_clean_success(world)
    assert world.scalar("select count(*) from marts.dim_customers") > 0
    assert world.scalar("select count(*) from activation.sync_crm__lifecycle_stages") > 0
    parts = {asset for (asset,) in world.query("select distinct asset from ops.skipped_parts")}
    assert {"insights/insights", "ml/lookalike_scores", "experiments/budget_allocations"} <= parts


def test_events_alone_become_sessions_and_customers(tmp_path_factory: pytest.TempPathFactory) -> None:
    world = _partial(tmp_path_factory, "events_only", {"events"})
    assert_clean_success(world)
    assert world.scalar("select count(*) from marts.fct_sessions") > 0
    # orders reported by `Order Completed` events exist as identity nodes although no orders export landed
    assert world.scalar("select count(*) from intermediate.int_identity__nodes where node_type = 'order'") > 0


def test_orders_and_consent_without_events_build(tmp_path_factory: pytest.TempPathFactory) -> None:
    world = _partial(tmp_path_factory, "orders_consent", {"orders", "consent"})
    assert_clean_success(world)
    assert world.scalar("select count(*) from marts.fct_orders") > 0
    assert world.scalar("select count(*) from marts.dim_customer_consents") > 0


def test_an_empty_landing_zone_says_what_to_put_where(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("empty")
    (home / "landing").mkdir()
    run = mos(home, "run")
    assert run.code == 2 and "Traceback" not in run.output
    assert len(run.output.strip().splitlines()) == 1, run.output
    assert "Nothing to build" in run.output and "events/ (JSONL)" in run.output
    activation = mos(home, "activation", "run", "--dry-run")
    assert activation.code == 2 and "Run `mos run` first" in activation.output
    assert "Traceback" not in activation.output
