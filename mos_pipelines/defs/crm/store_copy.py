"""The CRM's operational store copied into the warehouse before dbt (``ops/crm_store_*``; logic:
``mos_pipelines.crm.ingest``): the API's edits, people, notes and relationships reach ``dim_customers``, identity,
the notes' attributes and the relationship graph in the same build."""

import dagster as dg

from mos_pipelines.crm import ingest, store
from mos_pipelines.defs import changes
from mos_pipelines.defs.crm.erasure import OWNER
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.ingestion.contracts import SOURCES
from mos_pipelines.settings import WAREHOUSE_POOL, Settings

DESCRIPTIONS = {
    "crm_store_edits": "Fields set through the CRM API, one row per field (edits win in `marts.dim_customers`).",
    "crm_store_people": "People created through the CRM API, as contact records of the CRM system `mos_crm`.",
    "crm_store_notes": "Notes written through the CRM API, read like landed CRM notes.",
    "crm_store_relationships": "Relationships set through the CRM API (evidence `manual` in the graph).",
}


def _store_fingerprint(settings: Settings) -> str:
    db = store.Store.open_existing(settings)
    try:
        return ingest.store_fingerprint(db)
    finally:
        if db is not None:
            db.dispose()


# Nothing changed, nothing runs: the copy runs when the store changed (or the code); the raw tables it follows only
# order it (passive), and its data version is what it copied, so the same copy leaves the models alone.
for _name in ingest.COLUMNS:
    changes.register(dg.AssetKey(["ops", _name]), "crm_store", _store_fingerprint, passive=True)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["ops", name],
            deps=[dg.AssetKey(["raw", s.raw_table]) for s in SOURCES.values()],
            group_name="crm",
            kinds={"python", "duckdb"},
            owners=[OWNER],
            description=DESCRIPTIONS[name],
        )
        for name in ingest.COLUMNS
    ],
    pool=WAREHOUSE_POOL,
    name="crm_store_copy",
)
def crm_store_copy(context: dg.AssetExecutionContext, mos: MosHome):
    """The operational store's current state as ``ops.crm_store_*`` (empty tables when there is no store yet)."""
    db = store.Store.open_existing(mos.paths)
    try:
        with mos.connect() as con:
            copied = ingest.copy_store(con, db)
    finally:
        if db is not None:
            db.dispose()
    newest = copied.newest_change.isoformat() if copied.newest_change else "none"
    context.log.info(f"CRM store copied: {copied.rows} (newest change {newest})")
    for name, rows in copied.rows.items():
        yield dg.MaterializeResult(
            asset_key=["ops", name],
            data_version=dg.DataVersion(copied.digests[name]),
            metadata={
                "dagster/row_count": rows,
                "store": "none yet" if db is None else "operational store",
                "newest_change": newest,
            },
        )
