"""Erasure requests in the build: ``ops/erasure_identifiers`` after ingestion (hashes kept, the erased people's rows
deleted from raw and every other table before dbt runs) and ``ops/erasure_log`` after every other asset (every table
swept again, activation files rewritten; the operational store's request marked applied). Logic: ``mos_pipelines.crm.erasure``."""

from collections.abc import Iterable

import dagster as dg
import sqlalchemy as sa

from mos_pipelines.crm import erasure, store
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.ingestion.contracts import SOURCES
from mos_pipelines.settings import WAREHOUSE_POOL, Settings

START_KEY = dg.AssetKey(["ops", "erasure_identifiers"])
FINISH_KEY = dg.AssetKey(["ops", "erasure_log"])
OWNER = "team:marketing-ops"


def _requests(paths: Settings) -> list[erasure.Request]:
    db = store.Store.open_existing(paths)
    if db is None:
        return []
    try:
        with db.read() as conn:
            rows = conn.execute(sa.select(store.erasure_requests).order_by(store.erasure_requests.c.requested_at))
            return [erasure.Request(r.request_id, r.customer_id, r.requested_at) for r in rows]
    finally:
        db.dispose()


@dg.asset(
    key=START_KEY,
    deps=[dg.AssetKey(["raw", s.raw_table]) for s in SOURCES.values()],
    group_name="crm",
    kinds={"python", "duckdb"},
    owners=[OWNER],
    pool=WAREHOUSE_POOL,
    description="The CRM API's erasure requests (`crm_erasure_requests` of the operational store) as SHA-256 "
    "hashes of each person's identifiers (`ops.erasure_identifiers`, resolved from the previous build's "
    "`marts.dim_customer_identity_map`; requests in `ops.erasure_requests`), the raw rows of every erased "
    "person deleted before staging and identity read raw (so nobody comes back as a new customer), and a new "
    "request's rows deleted from every other table before dbt (incremental models keep rows across builds).",
)
def erasure_identifiers(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    requests = _requests(mos.paths)
    with mos.connect() as con:
        outcomes = erasure.prepare(con, requests)
        hashes, content = con.execute(
            f"select count(*), coalesce(bit_xor(hash(t)), 0) from {erasure.IDENTIFIERS} t"
        ).fetchone()  # type: ignore[misc]
    raw_removed = sum(sum(o.removed.values()) for o in outcomes.values())
    if raw_removed:
        context.log.info(f"erasure: {raw_removed} raw row(s) of erased people removed")
    # its data version is what the staging models read from it: the same requests resolving to the same identifiers
    # leave them as they are (a run brought here by new landing files alone changes nothing for them)
    version = f"{len(requests)}-{int(hashes)}-{int(content)}"
    return dg.MaterializeResult(
        metadata={"requests": len(requests), "identifier_hashes": int(hashes), "raw_rows_removed": raw_removed},
        data_version=dg.DataVersion(version),
    )


def _mark_applied(paths: Settings, outcomes: list[erasure.Outcome]) -> None:
    if not outcomes:
        return
    db = store.Store.open_existing(paths)
    if db is None:
        return
    try:
        with db.write() as conn:
            for outcome in outcomes:
                conn.execute(
                    store.erasure_requests.update()
                    .where(store.erasure_requests.c.request_id == outcome.request_id)
                    .values(status="applied", applied_at=outcome.completed_at)
                )
                conn.execute(
                    store.erasure_results.delete().where(store.erasure_results.c.request_id == outcome.request_id)
                )
                conn.execute(
                    store.erasure_results.insert().values(
                        request_id=outcome.request_id, completed_at=outcome.completed_at, removed=outcome.removed
                    )
                )
    finally:
        db.dispose()


def _sorted_keys(keys: Iterable[dg.AssetKey]) -> list[dg.AssetKey]:
    return sorted({k for k in keys if k != FINISH_KEY}, key=lambda k: k.to_user_string())


def completion_asset(upstream: Iterable[dg.AssetKey]) -> dg.AssetsDefinition:
    """``ops/erasure_log``, downstream of every asset of the full build (``upstream``), so it runs last."""

    @dg.asset(
        key=FINISH_KEY,
        deps=_sorted_keys(upstream),
        group_name="crm",
        kinds={"python", "duckdb"},
        owners=[OWNER],
        pool=WAREHOUSE_POOL,
        description="Completes each pending erasure request after every other asset of the build: rows holding "
        "the person's identifiers are deleted from every table of every schema (incremental and append-only "
        "tables too), files under `$MOS_HOME/activation` are rewritten without them, the rows removed per table "
        "go to `ops.erasure_log`, the raw values are dropped (only hashes stay) and the operational store's "
        "request is marked applied (`GET /api/v1/erasure-requests/{id}`).",
    )
    def erasure_log(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
        with mos.connect() as con:
            outcomes = erasure.finish(con, mos.paths.mos_home)
        _mark_applied(mos.paths, outcomes)
        for outcome in outcomes:
            context.log.info(f"erasure {outcome.request_id}: removed {outcome.removed}")
        return dg.MaterializeResult(
            metadata={
                "completed": len(outcomes),
                "rows_removed": sum(sum(o.removed.values()) for o in outcomes),
            }
        )

    return erasure_log


def definitions(
    parts: Iterable[dg.Definitions], excluded_tags: dict[str, str], excluded_groups: set[str]
) -> dg.Definitions:
    """The completion asset over the keys of ``parts`` (the rest of the build), deliveries and blueprints left out."""
    keys: set[dg.AssetKey] = set()
    for part in parts:
        for item in part.assets or []:
            if isinstance(item, dg.AssetsDefinition):
                for key in item.keys:
                    spec = item.specs_by_key[key]
                    tags = spec.tags or {}
                    if spec.group_name in excluded_groups or any(tags.get(k) == v for k, v in excluded_tags.items()):
                        continue
                    if item.is_executable:
                        keys.add(key)
    return dg.Definitions(assets=[completion_asset(keys)])
