"""The whole project run on Spark equals the DuckDB run (issue 21): the shared small world's landing files built by
`mos run` with the Spark engine — every dbt model, seed and test on a local Spark through Dagster, the CRM matcher's
SQL in Spark SQL, the Python assets reading Spark's tables through DuckDB views — then every table of every schema
compared with the DuckDB build of the same files (row counts, keys, numbers within 1e-9 relative, the rest exactly;
wall clocks and run ids left out by name). In `make test` (CI: about 7 minutes of one worker) and `make test-spark`;
skipped with the reason where the `spark` extra or Java is missing."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from mos_pipelines.runner import RunOutcome, run_assets
from mos_pipelines.settings import Settings
from mos_pipelines.spark.compare import COMPARED_SCHEMAS, compare_warehouses
from mos_pipelines.transform.project import ensure_manifest
from tests.integration.conftest import World, use_home

pytestmark = [pytest.mark.integration, pytest.mark.spark]


@pytest.fixture(scope="module")
def spark_run(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, RunOutcome]:
    """A new MOS_HOME with the shared world's landing files, run once with the Spark engine."""
    from mos_pipelines.spark.session import SparkUnavailable, check_available

    try:
        check_available()
    except SparkUnavailable as exc:
        pytest.skip(str(exc))
    home = tmp_path_factory.mktemp("spark_engine") / "home"
    home.mkdir()
    shutil.copytree(world.settings.landing_dir, home / world.settings.landing_dir.name)
    settings = Settings(mos_home=home)
    warehouse_config = home.parent / "warehouse.yaml"  # the CRM matcher's SQL on Spark too (DuckDB by default)
    warehouse_config.write_text("spark: {identity_matching: spark}\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOS_ENGINE", "spark")
        patch.setenv("MOS_WAREHOUSE_CONFIG", str(warehouse_config))
        use_home(settings)
        outcome = run_assets(None)
    use_home(world.settings)
    return settings, outcome


def test_the_whole_run_succeeds_on_spark_with_every_check(spark_run, world):
    _, outcome = spark_run
    assert outcome.success, outcome.failures
    assert outcome.checks_failed == 0, outcome.failures
    # Every asset and check of the DuckDB run; the snapshot (Delta only on Spark) is built on DuckDB from the views.
    assert outcome.materialized == world.first_run.materialized
    assert outcome.checks_passed == world.first_run.checks_passed


def test_the_crm_matcher_ran_its_sql_on_spark(spark_run):
    """`spark.identity_matching: spark`: the matcher's connection registered its similarity UDFs in the session (no
    other part of a Spark build does); its clusters equal DuckDB's in the comparison below."""
    from mos_pipelines.spark.session import spark_session
    from mos_pipelines.spark.similarity import UDF_NAMES

    assert spark_session().catalog.functionExists(UDF_NAMES["jaro_winkler_similarity"])


def test_dbt_relations_are_views_over_spark_files(spark_run):
    settings, _ = spark_run
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        kinds = dict(
            con.execute(
                "select table_schema || '.' || table_name, table_type from information_schema.tables "
                "where table_schema in ('marts', 'ml')"
            ).fetchall()
        )
        sql = con.execute("select sql from duckdb_views() where schema_name = 'marts' and view_name = 'dim_customers'")
        (definition,) = sql.fetchone() or ("",)
    finally:
        con.close()
    assert kinds["marts.dim_customers"] == "VIEW"
    # Spark's files: under this home's spark/ folder (one pytest process shares one Spark session: the first
    # module's home, then)
    assert "/spark/" in definition and "read_parquet" in definition
    assert kinds["ml.lookalike_scores"] == "BASE TABLE"  # a Python asset's table stays DuckDB's


def test_every_table_equals_the_duckdb_run(spark_run, world):
    settings, _ = spark_run
    manifest = ensure_manifest()
    results = compare_warehouses(
        world.settings.warehouse_path,
        settings.warehouse_path,
        manifest,
        COMPARED_SCHEMAS,
    )
    compared = [r for r in results if r.skipped is None]
    assert len(compared) >= 100, [f"{r.schema}.{r.table}" for r in results]
    assert {r.schema for r in compared if r.rows} >= {"marts", "activation", "insights", "decisions", "policy"}
    assert sum(r.rows for r in compared) > 10_000
    differing = {f"{r.schema}.{r.table}": r.differences for r in results if r.differences}
    assert differing == {}
