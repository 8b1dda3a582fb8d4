"""Activation as assets: the dbt sync models (their own build step) and one delivery per destination.

The sync models (``models/activation/``) read tables Python assets write after the gated dbt step
(lookalike scores, experiment assignments, notifications), so they are a third ``dbt build`` step.
Each destination of ``config/activation.yaml`` is a delivery asset downstream of its sync model;
deliveries are not part of the full build: their sensors (``sensors.py``) launch them once the sync
model materialized behind passing gates. Logic: ``mos_pipelines.activation``.
"""

import dagster as dg
from dagster_dbt import DbtCliResource

from mos_pipelines.activation.channels import DeliveryError
from mos_pipelines.activation.delivery import deliver
from mos_pipelines.configuration import load_activation as load_config
from mos_pipelines.configuration.dbt import vars_args
from mos_pipelines.defs.activation.gating import DELIVERY_TAG, delivery_key
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.defs.transform.assets import LAYERS, dbt_events, dbt_step
from mos_pipelines.settings import WAREHOUSE_POOL

OWNER = "team:marketing-ops"
CONFIG = load_config()
KINDS = {
    "email": {"email"},
    "webhook": {"api"},
    "google_customer_match": {"google"},
    "meta_custom_audience": {"meta"},
    "slack": {"slack"},
}

if LAYERS.activation:

    @dbt_step("dbt_activation_syncs", LAYERS.activation_select)
    def dbt_activation_syncs(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        """Build the sync models: exactly what each destination should hold."""
        yield from dbt_events(context, dbt, ["build", *vars_args()])


class DeliveryConfig(dg.Config):
    dry_run: bool = False  # write what would be sent instead of sending (the config's dry_run also applies)


def _metadata(report) -> dict:
    metadata = {
        "dagster/row_count": report.desired,
        "changes": report.changes,
        "upserts": report.upserts,
        "removes": report.removes,
        "sent": report.sent,
        "acknowledged": report.acknowledged,
        "failed": report.failed,
        "dead_letter": report.dead_letter,
        "attempts": report.attempts,
        "unchanged": report.unchanged,
        "blocked_consent": report.blocked_consent,
        "held_for_approval": report.held_for_approval,
        "held_contact_policy": report.held_contact_policy,
        "copy_rejected": report.copy_rejected,
        "dry_run": report.dry_run,
        "kill_switch": report.kill_switch,
        "reconciled_after_crash": dg.MetadataValue.json(report.reconciled),
        "waiting_for_operator": dg.MetadataValue.json(report.waiting),
    }
    if report.dry_run_file:
        metadata["dry_run_file"] = dg.MetadataValue.path(report.dry_run_file)
    if report.notes:
        metadata["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in report.notes))
    return metadata


def build_delivery(name: str) -> dg.AssetsDefinition:
    destination = CONFIG.destination(name)

    @dg.asset(
        key=delivery_key(name),
        deps=[dg.AssetKey(destination.sync_model.split("."))],
        group_name="activation",
        kinds=KINDS[destination.channel],
        owners=[OWNER],
        pool=WAREHOUSE_POOL,
        tags={DELIVERY_TAG[0]: DELIVERY_TAG[1], "mos/channel": destination.channel},
        description=(
            f"What destination `{name}` ({destination.channel}) acknowledged holding, per "
            f"`ops.activation_ledger`: the changes of `{destination.sync_model}` since the last delivery, sent once "
            "(consent re-checked at send time"
            + (f" for `{destination.consent_purpose}`" if destination.consent_purpose else "")
            + "). Launched by its sensor, not by the full build."
        ),
    )
    def _delivery(context: dg.AssetExecutionContext, config: DeliveryConfig, mos: MosHome) -> dg.MaterializeResult:
        settings = load_config()
        with mos.connect() as con:
            try:
                report = deliver(
                    con,
                    name,
                    settings,
                    mos.paths.mos_home,
                    context.run_id,
                    dry_run=config.dry_run or None,
                    log=context.log.info,
                )
            except DeliveryError as exc:
                raise dg.Failure(description=str(exc)) from exc
        if report.dead_letter or report.waiting:
            context.log.warning(
                f"{name}: {report.dead_letter} dead letter(s) this run; waiting for an operator: "
                f"{report.waiting} (`mos activation status`)"
            )
        return dg.MaterializeResult(metadata=_metadata(report))

    return _delivery


deliveries = [build_delivery(name) for name in CONFIG.destinations]
