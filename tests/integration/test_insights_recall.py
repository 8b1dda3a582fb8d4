"""Insights against planted truth over ten simulated worlds.

Scenario tests/integration/insights_planted.yaml plants three channel × region conversion effects, an email
variant click lift and a traffic drop in the last week, and declares two null slices. Ten seeds of a
1,000-person, 21-day world are generated; each is ingested and its marketing marts built by dbt (models only:
the full build with its tests and checks is exercised by test_insights.py and the other modules), two worlds at
a time. The insights then run on each world and are compared with its truth files
(mos_pipelines/simulation/insights_evaluation.py):

- at least 90 % of the planted effects appear as insights with the right direction;
- at most 5 % of the reported insights are about null slices;
- at least 95 % of the accepted insights that the truth can check are supported by the world's generating truth
  (truth/expected_daily.csv, arm_rates.csv: direction, and for anomalies a real change in the process), and at
  most 5 % of them cannot be checked;
- every statement of every run (anomalies included, which the smaller Dagster-built world cannot have) is
  traceable to its evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from mos_pipelines.configuration import load_insights as load_config
from mos_pipelines.insights import insight_tables
from mos_pipelines.insights.semantic import SemanticLayer
from mos_pipelines.insights.traceability import problems
from mos_pipelines.simulation.insights_evaluation import build_worlds, evaluate_world, recall_table

SCENARIO = Path(__file__).with_name("insights_planted.yaml")
SEEDS = list(range(1, 11))
PEOPLE, DAYS = 1000, 21


@pytest.fixture(scope="module")
def planted_worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    base = tmp_path_factory.mktemp("planted")
    yield [home for home, _ in build_worlds(SEEDS, PEOPLE, DAYS, SCENARIO, base, workers=2)]


def test_planted_effects_are_found_and_null_slices_stay_quiet(planted_worlds: list[Path]) -> None:
    config, semantic = load_config(), SemanticLayer.load()
    results = [(int(home.name.removeprefix("seed")), evaluate_world(home, config, semantic)) for home in planted_worlds]
    table = recall_table(results)
    print("\n" + table)
    measurable = sum(len(ev.measurable) for _, ev in results)
    found = sum(ev.found for _, ev in results)
    reported = sum(ev.reported for _, ev in results)
    about_nulls = sum(len(ev.null_slice_insights) for _, ev in results)
    checkable = sum(ev.checkable for _, ev in results)
    supported = sum(ev.supported for _, ev in results)
    assert measurable == 5 * len(SEEDS), table  # every planted effect is measurable in these worlds
    assert found / measurable >= 0.90, table
    assert reported > 0 and about_nulls / reported <= 0.05, table
    assert checkable >= 0.95 * reported, table  # "not checkable" is no dumping ground
    assert supported / checkable >= 0.95, table
    residual = set(config.family("channel_comparison").residual_slices)
    assert residual and not any(
        s.key.split("|")[3] in residual
        for _, ev in results
        for s in ev.scores
        if s.insight_type == "channel_comparison"
    ), table


def test_every_statement_of_every_world_is_traceable(planted_worlds: list[Path]) -> None:
    scanned, types, too_few_orders = 0, set(), 0
    for home in planted_worlds:
        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
            rows = insight_tables.run_insights(con, status=None)
        tested = rows[rows["status"] != "rejected_insufficient_data"]
        too_few_orders += sum("too few orders" in (e["decision"]["reason"] or "") for e in rows["evidence"])
        untraceable = {
            r.insight_id: found
            for r in tested.itertuples()
            if (found := problems(r.insight_type, r.statement, r.effect_size, r.evidence))
        }
        assert untraceable == {}, home.name
        scanned += len(tested)
        types |= set(tested["insight_type"])
    assert {"channel_comparison", "region_comparison", "anomaly", "budget_pacing", "experiment_winner"} <= types
    assert scanned > 1000
    assert too_few_orders > 0  # revenue behind fewer than min_orders orders is not tested, and says why
