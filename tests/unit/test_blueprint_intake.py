"""Objective intake from the Dagster launchpad: the job ``blueprint_intake`` takes the objective as run config and
writes the same draft `mos blueprint new` writes; an objective it cannot read fails the run with the parser's
message."""

from __future__ import annotations

import dagster as dg
import pytest

from mos_pipelines.defs import blueprint as wiring
from mos_pipelines.defs.blueprint.intake import JOB
from mos_pipelines.defs.resources import MosHome
from tests.unit.test_blueprint import build_warehouse


@pytest.fixture()
def home(tmp_path):
    build_warehouse(tmp_path / "warehouse.duckdb")
    return tmp_path


def _launch(home, **config):
    job = dg.Definitions(
        jobs=wiring.definitions(home / "blueprints").jobs, resources={"mos": MosHome(mos_home=str(home))}
    ).resolve_job_def(JOB)
    return job.execute_in_process(run_config={"ops": {"draft_blueprint": {"config": config}}}, raise_on_error=False)


def test_the_launchpad_drafts_the_blueprint_mos_blueprint_new_would(home) -> None:
    result = _launch(home, objective="Expand paying customers in the EU", budget_usd=20000, horizon_months=3)
    assert result.success
    bid = result.output_for_node("draft_blueprint")
    path = home / "blueprints" / f"{bid}.yaml"
    text = path.read_text()
    assert "Expand paying customers in the EU" in text and "budget_usd: 20000.0" in text and "\napproval: null" in text
    output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    metadata = output.event_specific_data.metadata
    assert metadata["blueprint_id"].value == bid
    assert "paying_customers" in metadata["goal"].value and "from 20" in metadata["goal"].value
    # the file is the one the command line writes: a second intake keeps it (same objective, same data)
    again = _launch(home, objective="Expand paying customers in the EU", budget_usd=20000, horizon_months=3)
    assert again.success and again.output_for_node("draft_blueprint") == bid


def test_an_objective_it_cannot_read_fails_the_run_with_what_is_supported(home) -> None:
    result = _launch(home, objective="Reduce churn in the EU", budget_usd=1000, horizon_months=1)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and "supported" in failure.message.lower()
    assert not (home / "blueprints").exists() or not any((home / "blueprints").glob("bp_*.yaml"))
