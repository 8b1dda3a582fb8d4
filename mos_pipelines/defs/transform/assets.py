"""Every dbt model, seed and test as Dagster assets and checks (``dbt build``), in steps.

``dbt_foundation`` builds the models the quality gates guard (``fct_events``, ``dim_customers``,
``fct_ad_spend_daily``), everything they are built from and everything unrelated to them;
``dbt_downstream_of_gates`` builds every other descendant of a gated model. The gates are blocking
checks on the gated models, so a failed gate skips the second step in that run. The split is
computed from the manifest (``mos_pipelines.transform.layers``): a new model downstream of a gated
model lands in the second step without being listed anywhere. ``dbt_after_python_assets`` builds the
models that read tables Python assets write (and their descendants), after those assets. The activation
sync models are the last step, wired in ``defs/activation/assets.py``. Every step passes the configuration's
vars (``--vars``, ``mos_pipelines.configuration.dbt``), read when the step runs, and writes its artifacts under
``$MOS_HOME/dbt/target`` (``mos_pipelines.transform.targets``: one full parse per warehouse, not per step).
"""

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from mos_pipelines import warehouse
from mos_pipelines.configuration.dbt import vars_args
from mos_pipelines.defs.identity.model_card import with_model_card
from mos_pipelines.defs.resources import dbt_project
from mos_pipelines.defs.transform.translator import MosDbtTranslator
from mos_pipelines.quality.gates import gated_dbt_models
from mos_pipelines.settings import FULL_REFRESH_TAG, WAREHOUSE_POOL, get_settings
from mos_pipelines.transform.layers import split_layers
from mos_pipelines.transform.project import prepared_manifest
from mos_pipelines.transform.targets import invocation_target, keep_parse_state

MANIFEST = prepared_manifest()
LAYERS = split_layers(json.loads(MANIFEST.read_text()), gated_dbt_models())


def dbt_build(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """``dbt build`` of the step's selection with every var, streamed (with the identity model card).

    In a subset run (``mos run --select …``, a partial materialization in the UI) a test runs only when every
    model it reads is built in this run or upstream of what is (dbt's ``buildable`` indirect selection): with dbt's
    default, a relationship test between a rebuilt model and a child left as it was compares new ids with old ones
    and fails. A whole step keeps the default; a ``DBT_INDIRECT_SELECTION`` set by the user wins."""
    subset_mode = context.is_subset and "DBT_INDIRECT_SELECTION" not in os.environ
    if subset_mode:
        os.environ["DBT_INDIRECT_SELECTION"] = "buildable"  # read once, when the invocation is prepared
    try:
        events = dbt_events(context, dbt, build_args(context.run.tags))
    finally:
        if subset_mode:
            del os.environ["DBT_INDIRECT_SELECTION"]
    yield from with_model_card(events)


def build_args(tags: Mapping[str, str]) -> list[str]:
    """``dbt build`` with every var; with ``--full-refresh`` in a run that rebuilds everything (``mos run
    --full-refresh``: the incremental models rebuilt from scratch, not only re-run)."""
    full = ["--full-refresh"] if tags.get(FULL_REFRESH_TAG) == "true" else []
    return ["build", *full, *vars_args(lenient=True)]


def dbt_events(context: dg.AssetExecutionContext, dbt: DbtCliResource, args: list[str]) -> Iterator[Any]:
    """Start ``dbt <args>`` now (environment read now) in this warehouse's target folder; its events, streamed.
    The invocation's parse state is kept for the next one (``mos_pipelines.transform.targets``). On the Spark
    engine (``mos_pipelines.warehouse.engine``) the step's nodes are built on Spark instead (``spark_step``)."""
    if warehouse.engine() == "spark":
        from mos_pipelines.defs.transform.spark_step import spark_dbt_events

        return spark_dbt_events(context, MANIFEST, args[1:])
    home = get_settings().mos_home
    target = invocation_target(home, context.op_def.name, context.run_id)
    invocation = dbt.cli(args, context=context, target_path=target)

    def events() -> Iterator[Any]:
        try:
            yield from invocation.stream()
        finally:
            keep_parse_state(home, target)

    return events()


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
    yield from dbt_build(context, dbt)


dbt_layers = [dbt_foundation]

if LAYERS.gated:

    @dbt_step("dbt_downstream_of_gates", LAYERS.gated_select, LAYERS.gated_exclude)
    def dbt_downstream_of_gates(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        """Build every model downstream of a quality gate; skipped in a run where a gate failed."""
        yield from dbt_build(context, dbt)

    dbt_layers.append(dbt_downstream_of_gates)

if LAYERS.late:

    @dbt_step("dbt_after_python_assets", LAYERS.late_select, LAYERS.late_exclude)
    def dbt_after_python_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        """Build the models that read tables Python assets write (e.g. experiment assignments)."""
        yield from dbt_build(context, dbt)

    dbt_layers.append(dbt_after_python_assets)
