"""`mos spark build` (the dbt project alone on Spark, from the raw layer DuckDB holds): every model, seed and dbt Python
model of the shared small world built there without the dbt tests, then every table of marts and activation compared
with the DuckDB warehouse (row counts, keys, numbers within 1e-9 relative, the rest exactly). Run by `make test-spark`
(MOS_TEST_SPARK=1) in a pytest process of its own (a process has one Spark session, and `make test`'s whole Spark run,
test_spark.py, has its own home); skipped elsewhere, or with the reason where the `spark` extra or Java is missing."""

from __future__ import annotations

import os
import shutil

import pytest

from mos_pipelines.settings import Settings
from mos_pipelines.spark.build import SparkBuild, build_on_spark, not_built_relations, relation_ids
from mos_pipelines.spark.compare import compare_marts
from mos_pipelines.spark.session import SparkUnavailable, check_available
from mos_pipelines.transform.project import ensure_manifest
from tests.integration.conftest import World, use_home

pytestmark = [
    pytest.mark.integration,
    pytest.mark.spark,
    pytest.mark.skipif(os.environ.get("MOS_TEST_SPARK") != "1", reason="`mos spark build` runs in `make test-spark`"),
]


@pytest.fixture(scope="module")
def spark_models(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, SparkBuild]:
    """The shared world read-only; Spark's catalog and files in a home of their own (the warehouse file is the
    shared world's, opened read-only by the export)."""
    try:
        check_available()
    except SparkUnavailable as exc:
        pytest.skip(str(exc))
    home = tmp_path_factory.mktemp("spark_models") / "home"
    home.mkdir()
    shutil.copy(world.settings.warehouse_path, home / world.settings.warehouse_path.name)
    settings = Settings(mos_home=home)
    use_home(settings)
    manifest = ensure_manifest()
    build = build_on_spark(settings, manifest, only=relation_ids(manifest))
    use_home(world.settings)
    return settings, build


def test_every_model_and_seed_builds_on_spark(spark_models):
    _, build = spark_models
    assert build.failures == []
    assert build.nodes_built > 80  # 86 models and seeds today
    assert {r.unique_id.split(".")[0] for r in build.results} == {"model", "seed"}  # no test ran
    assert {run.name for run in build.python_runs} == {
        "int_phone_numbers__e164",
        "int_crm_contacts__matched",
        "int_notes__attributes",
        "fct_customer_id_changes",
        "customer_relationships",
    }
    assert set(build.skipped) == {"snapshot.mos_pipelines.dim_customers_snapshot"}
    assert "Delta" in build.skipped["snapshot.mos_pipelines.dim_customers_snapshot"]


def test_every_mart_equals_the_duckdb_build(spark_models):
    from mos_pipelines.spark.session import spark_session

    settings, _ = spark_models
    manifest = ensure_manifest()
    results = compare_marts(settings.warehouse_path, spark_session(), manifest, not_built=not_built_relations(manifest))
    compared = [r for r in results if r.skipped is None]
    assert len(compared) >= 25, [f"{r.schema}.{r.table}" for r in results]
    assert sum(r.rows for r in compared) > 1000
    differing = {f"{r.schema}.{r.table}": r.differences for r in results if r.differences}
    assert differing == {}
