"""Every dbt model, seed and test as Dagster assets and checks (``dbt build``), in steps.

``dbt_foundation`` builds the models the quality gates guard (``fct_events``, ``dim_customers``,
``fct_ad_spend_daily``), everything they are built from and everything unrelated to them;
``dbt_downstream_of_gates`` builds every other descendant of a gated model. The gates are blocking
checks on the gated models, so a failed gate skips the second step in that run. The split is
computed from the manifest (``mos_pipelines.transform.layers``): a new model downstream of a gated
model lands in the second step without being listed anywhere. ``dbt_after_python_assets`` builds the
models that read tables Python assets write (and their descendants), after those assets. The activation
sync models are the last step, wired in ``defs/activation/assets.py``. Every step passes the configuration's
vars (``--vars``, ``mos_pipelines.configuration.dbt``), read when the step runs.
"""

import json

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from mos_pipelines.configuration.dbt import vars_args
from mos_pipelines.defs.identity.model_card import with_model_card
from mos_pipelines.defs.resources import dbt_project
from mos_pipelines.defs.transform.translator import MosDbtTranslator
from mos_pipelines.quality.gates import gated_dbt_models
from mos_pipelines.settings import WAREHOUSE_POOL
from mos_pipelines.transform.layers import split_layers
from mos_pipelines.transform.project import prepared_manifest

MANIFEST = prepared_manifest()
LAYERS = split_layers(json.loads(MANIFEST.read_text()), gated_dbt_models())


def dbt_step(name: str, select: str, exclude: str | None = ""):
    """``@dbt_assets`` for one step of the dbt build: the selected models of the one manifest, in the warehouse pool."""
    return dbt_assets(
        manifest=MANIFEST,
        project=dbt_project,
        dagster_dbt_translator=MosDbtTranslator(),
        pool=WAREHOUSE_POOL,
        name=name,
        select=select,
        exclude=exclude,
    )


@dbt_step("dbt_foundation", LAYERS.foundation_select, LAYERS.foundation_exclude)
def dbt_foundation(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Build the gated models and everything they depend on; tests become asset checks."""
    yield from with_model_card(dbt.cli(["build", *vars_args(lenient=True)], context=context).stream())


dbt_layers = [dbt_foundation]

if LAYERS.gated:

    @dbt_step("dbt_downstream_of_gates", LAYERS.gated_select, LAYERS.gated_exclude)
    def dbt_downstream_of_gates(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        """Build every model downstream of a quality gate; skipped in a run where a gate failed."""
        yield from with_model_card(dbt.cli(["build", *vars_args(lenient=True)], context=context).stream())

    dbt_layers.append(dbt_downstream_of_gates)

if LAYERS.late:

    @dbt_step("dbt_after_python_assets", LAYERS.late_select, LAYERS.late_exclude)
    def dbt_after_python_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        """Build the models that read tables Python assets write (e.g. experiment assignments)."""
        yield from with_model_card(dbt.cli(["build", *vars_args(lenient=True)], context=context).stream())

    dbt_layers.append(dbt_after_python_assets)
