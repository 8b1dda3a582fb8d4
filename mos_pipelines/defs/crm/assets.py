"""CRM webhooks: one delivery asset (launched by its sensor when the operational store has something to send,
never by the full build), in the warehouse pool because the activation ledger lives in the warehouse."""

import dagster as dg
import sqlalchemy as sa

from mos_pipelines.configuration import load_activation
from mos_pipelines.crm import customers, store, webhooks
from mos_pipelines.defs.activation.gating import DELIVERY_TAG
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.settings import WAREHOUSE_POOL, get_settings

KEY = dg.AssetKey(["crm", "webhook_deliveries"])


@dg.asset(
    key=dg.AssetKey(["crm", "customers_serving_copy"]),
    deps=[dg.AssetKey(["marts", "dim_customers"])],
    group_name="crm",
    kinds={"parquet"},
    owners=["team:marketing-ops"],
    pool=WAREHOUSE_POOL,
    description="`marts.dim_customers` as `$MOS_HOME/crm/dim_customers.parquet` (replaced atomically): what the CRM "
    "API reads, so its requests never open the warehouse a build is writing.",
)
def crm_customers_serving_copy(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    with mos.connect() as con:
        rows = customers.publish(con, mos.paths.mos_home)
    if rows is None:
        context.log.warning("marts.dim_customers does not exist: no serving copy published")
        return dg.MaterializeResult(metadata={"skipped": "marts.dim_customers does not exist"})
    return dg.MaterializeResult(metadata={"dagster/row_count": rows})


@dg.asset(
    key=KEY,
    group_name="crm",
    kinds={"api"},
    owners=["team:marketing-ops"],
    pool=WAREHOUSE_POOL,
    tags={DELIVERY_TAG[0]: DELIVERY_TAG[1], "mos/channel": "crm_webhook"},
    description="The CRM API's changes and the builds' golden-record changes, signed and sent to each webhook "
    "subscriber once (`ops.activation_ledger`, destinations `crm_webhook__<subscription>`). Launched by "
    "`crm_webhook_sensor`; `mos crm deliver` does the same from the command line.",
)
def crm_webhook_deliveries(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    db = store.Store.open(mos.paths)
    try:
        with mos.connect() as con:
            report = webhooks.deliver(con, db, load_activation().retry, context.run_id, log=context.log.info)
    finally:
        db.dispose()
    totals = {
        k: sum(getattr(s, k) for s in report.subscriptions)
        for k in ("enqueued", "acknowledged", "failed", "dead_letter", "attempts", "resent_after_crash")
    }
    return dg.MaterializeResult(
        metadata={"subscriptions": len(report.subscriptions), "build_events": report.build_events, **totals}
    )


crm_webhook_job = dg.define_asset_job(
    name="crm_webhooks", selection=dg.AssetSelection.assets(KEY), description="Send the CRM's webhooks."
)


def _work_key() -> str | None:
    """What there is to send, as a run key (None: nothing): the outbox's last event, replays, failed deliveries."""
    db = store.Store.open_existing(get_settings())
    if db is None:  # no CRM store yet: nothing to send, and no file made by a tick
        return None
    try:
        with db.read() as conn:
            last = conn.execute(sa.select(sa.func.coalesce(sa.func.max(store.events.c.seq), 0))).scalar_one()
            behind = conn.execute(
                sa.select(sa.func.count())
                .select_from(store.subscriptions)
                .where(store.subscriptions.c.active.is_(True), store.subscriptions.c.enqueued_seq < last)
            ).scalar_one()
            replays = conn.execute(
                sa.select(sa.func.count()).select_from(store.replays).where(store.replays.c.applied_at.is_(None))
            ).scalar_one()
            failed = conn.execute(
                sa.select(sa.func.count())
                .select_from(store.deliveries)
                .where(store.deliveries.c.status.in_(("failed", "pending", "in_flight")))
            ).scalar_one()
    finally:
        db.dispose()
    if not (behind or replays or failed):
        return None
    return f"crm:{last}:{replays}:{failed}"


@dg.sensor(job=crm_webhook_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def crm_webhook_sensor(context: dg.SensorEvaluationContext):
    """Launches `crm_webhooks` when the CRM has events a subscriber has not had, replays, or failed deliveries."""
    key = _work_key()
    if key is None:
        return dg.SkipReason("nothing to send: every subscriber has every event")
    if key == context.cursor:
        return dg.SkipReason("a run for this state was launched already")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=key)], cursor=key)
