"""Every dbt model, seed and test as Dagster assets and checks (``dbt build``)."""

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from mos_pipelines.settings import WAREHOUSE_POOL
from mos_pipelines.transform.project import dbt_project, ensure_manifest
from mos_pipelines.transform.translator import MosDbtTranslator


@dbt_assets(
    manifest=ensure_manifest(dbt_project),
    project=dbt_project,
    dagster_dbt_translator=MosDbtTranslator(),
    pool=WAREHOUSE_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Build the selected dbt resources; tests become asset checks."""
    yield from dbt.cli(["build"], context=context).stream()
