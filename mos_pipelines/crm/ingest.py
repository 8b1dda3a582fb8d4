"""The CRM's operational store as warehouse tables, so a build reads what people and programs changed through the API.

Written right after ingestion and before any dbt model (the asset ``ops/crm_store``), replaced whole each build (the
store is the system of record; these are its copy for one build):

- ``ops.crm_store_edits``: one row per field a person set through the API on a warehouse customer. ``dim_customers``
  applies the newest edit of each field over its survivorship (edits win), and its snapshot keeps the history.
- ``ops.crm_store_people``: the people the API created, as CRM contact records of the system ``mos_crm`` (staging
  ``stg_crm_store__contacts``), so identity matches them with what the warehouse knows; their fields are a record
  among the customer's records (survivorship decides), not edits: creating "Dup" with a known email must not rename
  the person that email belongs to.
- ``ops.crm_store_notes``: notes written through the API (subject: the customer id), read like landed notes.
- ``ops.crm_store_relationships``: edges people set by hand (``customer_relationships``, evidence ``manual``).

Erased people (``erased_at`` set) are left out of every table. Plain module: no Dagster, no simulator.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import sqlalchemy as sa

from mos_pipelines.crm import store
from mos_pipelines.crm.customers import FIELDS

SYSTEM = "mos_crm"  # the CRM system name API-created people carry in the warehouse (contact_record_key mos_crm:<id>)
SCHEMA = "ops"

COLUMNS: dict[str, dict[str, str]] = {
    "crm_store_edits": {
        "customer_id": "varchar",
        "field": "varchar",
        "value": "varchar",
        "edited_at": "timestamp",
        "edited_by": "varchar",
        "record_version": "bigint",
    },
    "crm_store_people": {
        "crm_record_id": "varchar",
        **{f: "varchar" for f in FIELDS},
        "created_at": "timestamp",
        "updated_at": "timestamp",
        "updated_by": "varchar",
    },
    "crm_store_notes": {
        "note_id": "varchar",
        "customer_id": "varchar",
        "author": "varchar",
        "body": "varchar",
        "created_at": "timestamp",
        "updated_at": "timestamp",
    },
    "crm_store_relationships": {
        "relationship_id": "varchar",
        "from_customer_id": "varchar",
        "to_customer_id": "varchar",
        "relationship_type": "varchar",
        "weight": "double",
        "evidence": "varchar",
        "updated_by": "varchar",
        "updated_at": "timestamp",
    },
}


@dataclass(frozen=True)
class Copied:
    """Rows written per table, a digest of each table's content, and the store's newest change (None: no store or
    an empty one)."""

    rows: dict[str, int]
    newest_change: datetime.datetime | None
    digests: dict[str, str]


SOURCE_TABLES = (store.customers, store.notes, store.relationships)


def store_fingerprint(db: store.Store | None) -> str:
    """What the copy would read, cheaply: per source table its row count and newest ``updated_at`` (an edit bumps
    it; a delete changes the count), and the number of erased people. Changes when, and only when, a copy could."""
    if db is None:
        return "no store"
    parts = []
    with db.read() as conn:
        for table in SOURCE_TABLES:
            count, newest = conn.execute(
                sa.select(sa.func.count(), sa.func.max(table.c.updated_at)).select_from(table)
            ).one()
            parts.append(f"{table.name}:{count}:{newest}")
        erased = conn.execute(
            sa.select(sa.func.count()).select_from(store.customers).where(store.customers.c.erased_at.is_not(None))
        ).scalar_one()
    parts.append(f"erased:{erased}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def read_store(db: store.Store) -> dict[str, list[dict[str, Any]]]:
    """The rows of every ``ops.crm_store_*`` table, read in one transaction of the store."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in COLUMNS}
    with db.read() as conn:
        erased = {
            r[0]
            for r in conn.execute(
                sa.select(store.customers.c.customer_id).where(store.customers.c.erased_at.is_not(None))
            )
        }
        for r in conn.execute(sa.select(store.customers).order_by(store.customers.c.customer_id)):
            if r.erased_at is not None:
                continue
            fields = {k: v for k, v in (r.fields or {}).items() if k in FIELDS}
            is_warehouse = r.source == "warehouse"
            for field in sorted(fields) if is_warehouse else ():
                out["crm_store_edits"].append(
                    {
                        "customer_id": r.customer_id,
                        "field": field,
                        "value": _text(fields[field]),
                        "edited_at": r.updated_at,
                        "edited_by": r.updated_by,
                        "record_version": r.version,
                    }
                )
            if not is_warehouse:
                out["crm_store_people"].append(
                    {
                        "crm_record_id": r.customer_id,
                        **{f: _text(fields.get(f)) for f in FIELDS},
                        "created_at": r.created_at,
                        "updated_at": r.updated_at,
                        "updated_by": r.updated_by,
                    }
                )
        for r in conn.execute(sa.select(store.notes).order_by(store.notes.c.note_id)):
            if r.customer_id not in erased:
                out["crm_store_notes"].append(
                    {
                        "note_id": r.note_id,
                        "customer_id": r.customer_id,
                        "author": r.author,
                        "body": r.body,
                        "created_at": r.created_at,
                        "updated_at": r.updated_at,
                    }
                )
        for r in conn.execute(sa.select(store.relationships).order_by(store.relationships.c.relationship_id)):
            if r.from_customer_id not in erased and r.to_customer_id not in erased:
                out["crm_store_relationships"].append(
                    {
                        "relationship_id": r.relationship_id,
                        "from_customer_id": r.from_customer_id,
                        "to_customer_id": r.to_customer_id,
                        "relationship_type": r.type,
                        "weight": r.weight,
                        "evidence": r.evidence,
                        "updated_by": r.updated_by,
                        "updated_at": r.updated_at,
                    }
                )
    return out


def write_tables(
    con: duckdb.DuckDBPyConnection, rows: dict[str, list[dict[str, Any]]]
) -> tuple[dict[str, int], dict[str, str]]:
    """Replace each ``ops.crm_store_*`` table with ``rows`` (typed as COLUMNS says, empty tables included); the rows
    written and a digest of the content per table (the asset's data version: the same copy leaves dbt alone)."""
    con.execute(f"create schema if not exists {SCHEMA}")
    written: dict[str, int] = {}
    digests: dict[str, str] = {}
    for name, columns in COLUMNS.items():
        frame = pd.DataFrame(rows.get(name, []), columns=list(columns))
        view = f"_crm_store_{name}"
        con.register(view, frame)
        try:
            select = ", ".join(f'cast("{c}" as {t}) as "{c}"' for c, t in columns.items())
            con.execute(f"create or replace table {SCHEMA}.{name} as select {select} from {view}")
        finally:
            con.unregister(view)
        written[name] = len(frame)
        digests[name] = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()[:16]
    return written, digests


def copy_store(con: duckdb.DuckDBPyConnection, db: store.Store | None) -> Copied:
    """Copy the operational store into the warehouse (empty tables when there is no store)."""
    rows = read_store(db) if db is not None else {}
    written, digests = write_tables(con, rows)
    stamps = [
        r[key]
        for table in rows.values()
        for r in table
        for key in ("edited_at", "updated_at")
        if r.get(key) is not None
    ]
    return Copied(written, max(stamps) if stamps else None, digests)
