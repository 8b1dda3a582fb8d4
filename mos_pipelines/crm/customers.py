"""Customers as the CRM API shows them: the warehouse's golden record (``marts.dim_customers``, read through a
read-only DuckDB connection opened per request) merged with the operational store's manual records (edits win).

Listing is keyset pagination on ``customer_id`` over both sources: the warehouse page excludes the ids the store
has a record of, the store's records are merged with their warehouse base and filtered in Python, and the two sorted
runs are merged. A cursor is the last id of a page (opaque to clients: base64 JSON with a digest of the filters), so
a page is stable while records are added or edited before it.

Requests do not open the warehouse when they can avoid it: each build publishes ``marts.dim_customers`` as a Parquet
file (``publish``, ``$MOS_HOME/crm/dim_customers.parquet``, replaced atomically) that ``WarehouseSource`` loads into
an in-memory DuckDB once per version of the file. Without that file (no build since this was added) a request opens
the warehouse read-only (about 70 ms, and it competes with a build for the file lock: a 503 when the build holds it).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mos_pipelines.crm import store

WAREHOUSE_TABLE = "marts.dim_customers"
FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone_e164",
    "company",
    "job_title",
    "country_code",
    "city",
    "postcode",
    "birth_date",
)
FILTERS = ("email", "company", "job_title", "country_code", "city", "last_name")
PII_FIELDS = {"email": "email", "phone_e164": "phone", "first_name": "name", "last_name": "name"}


class WarehouseBusy(RuntimeError):
    """The warehouse is being written by another process (DuckDB: one writer, no readers beside it)."""


class Absorbed(LookupError):
    """A person the API created is now part of a warehouse customer (a build's identity matched them)."""

    def __init__(self, crm_id: str, customer_id: str) -> None:
        super().__init__(f"customer {crm_id} is now part of customer {customer_id} (matched by identity in a build)")
        self.crm_id, self.customer_id = crm_id, customer_id


class BadCursor(ValueError):
    pass


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value


def _connect(path: Path) -> duckdb.DuckDBPyConnection | None:
    if not path.exists():
        return None
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:  # "Could not set lock on file": a build or delivery holds it
        raise WarehouseBusy(f"the warehouse {path} is being written (a build or delivery); try again shortly") from exc


SERVING_FILE = Path("crm") / "dim_customers.parquet"
# People the API created and a build's identity resolved (crm_record_id -> the warehouse customer now holding them).
CREATED_FILE = Path("crm") / "created_people.parquet"
CREATED_TABLE = "marts.crm_created_people"
IDENTITY_MAP = "marts.dim_customer_identity_map"


class WarehouseSource:
    """Where requests read warehouse customers: the published Parquet copy if there is one, else the warehouse."""

    def __init__(self, mos_home: Path) -> None:
        self.warehouse = mos_home / "warehouse.duckdb"
        self.serving = mos_home / SERVING_FILE
        self.created = mos_home / CREATED_FILE
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._version: tuple[int, int] | None = None

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """A connection with ``marts.dim_customers`` (None when neither the copy nor the warehouse exists)."""
        try:
            stat = self.serving.stat()
        except FileNotFoundError:
            con = _connect(self.warehouse)
            try:
                yield con
            finally:
                if con is not None:
                    con.close()
            return
        with self._lock:
            version = (stat.st_mtime_ns, stat.st_ino)
            if self._con is None or self._version != version:
                fresh = duckdb.connect(":memory:")
                fresh.execute("create schema marts")
                fresh.execute(f"create table {WAREHOUSE_TABLE} as select * from read_parquet(?)", [str(self.serving)])
                if self.created.exists():
                    fresh.execute(f"create table {CREATED_TABLE} as select * from read_parquet(?)", [str(self.created)])
                if self._con is not None:
                    self._con.close()
                self._con, self._version = fresh, version
            cursor = self._con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()


def publish(con: duckdb.DuckDBPyConnection, mos_home: Path) -> int | None:
    """Write ``marts.dim_customers`` to the serving copy (a temporary file renamed over the old one, so a reader
    sees the old or the new file, never half of one); the rows written, or None when the table does not exist."""
    if not _has_table(con):
        return None
    target = mos_home / SERVING_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    con.execute(f"copy (select * from {WAREHOUSE_TABLE} order by customer_id) to '{partial}' (format parquet)")
    if _has_table(con, IDENTITY_MAP):
        created = mos_home / CREATED_FILE
        created_partial = created.with_suffix(f".{os.getpid()}.tmp")
        con.execute(f"copy ({_CREATED_SQL} order by 1) to '{created_partial}' (format parquet)")
        os.replace(created_partial, created)  # first: the dim_customers rename below makes readers reload both
    os.replace(partial, target)
    return int(con.execute(f"select count(*) from {WAREHOUSE_TABLE}").fetchone()[0])  # type: ignore[index]


_CREATED_SQL = (
    f"select source_record_id as crm_record_id, min(customer_id) as customer_id from {IDENTITY_MAP} "
    "where node_type = 'crm' and source_system = 'mos_crm' and source_record_id is not null group by 1"
)


def absorbed(con: duckdb.DuckDBPyConnection | None, crm_ids: list[str]) -> dict[str, str]:
    """People the API created that a build's identity made part of a warehouse customer: crm id -> customer id.
    From the serving copy's table when there is one, else the warehouse's identity map; {} before any build."""
    if con is None or not crm_ids:
        return {}
    if _has_table(con, CREATED_TABLE):
        sql = f"select crm_record_id, customer_id from {CREATED_TABLE}"
    elif _has_table(con, IDENTITY_MAP):
        sql = f"select * from ({_CREATED_SQL})"
    else:
        return {}
    con.register("_crm_created_ids", _ids_frame(crm_ids))
    try:
        rows = con.execute(f"{sql} where crm_record_id in (select customer_id from _crm_created_ids)").fetchall()
    finally:
        con.unregister("_crm_created_ids")
    return {str(a): str(b) for a, b in rows}


def absorbed_into(source: WarehouseSource, crm_id: str) -> str | None:
    with source.connect() as con:
        return absorbed(con, [crm_id]).get(crm_id)


def _has_table(con: duckdb.DuckDBPyConnection, name: str = WAREHOUSE_TABLE) -> bool:
    schema, table = name.split(".")
    rows = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
    ).fetchall()  # fetchall: a half-read result would block the next statement on this connection
    return bool(rows[0][0])


def _columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    schema, table = WAREHOUSE_TABLE.split(".")
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows]


def _select(
    con: duckdb.DuckDBPyConnection, where: str, params: list[Any], limit: int | None, present: set[str] | None = None
) -> list[dict[str, Any]]:
    present = set(_columns(con)) if present is None else present
    if "customer_id" not in present:
        return []
    cols = ", ".join(f'"{f}"' if f in present else f'null as "{f}"' for f in FIELDS)
    sql = f"select customer_id, {cols} from {WAREHOUSE_TABLE} where {where} order by customer_id"
    if limit is not None:
        sql += f" limit {int(limit)}"
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [{n: _json_value(v) for n, v in zip(names, row)} for row in cursor.fetchall()]


def _rows_by_id(con: duckdb.DuckDBPyConnection, ids: list[str], present: set[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    con.register("_crm_wanted_ids", _ids_frame(ids))
    try:
        rows = _select(con, "customer_id in (select customer_id from _crm_wanted_ids)", [], None, present)
    finally:
        con.unregister("_crm_wanted_ids")
    return {r["customer_id"]: r for r in rows}


def warehouse_rows(source: WarehouseSource, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The warehouse's golden records of ``ids`` (missing ids are absent)."""
    if not ids:
        return {}
    with source.connect() as con:
        present = set(_columns(con)) if con is not None else set()
        if con is None or "customer_id" not in present:
            return {}
        return _rows_by_id(con, ids, present)


def merge(base: dict[str, Any] | None, record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The customer as the API shows it: the store's fields win over the warehouse's; None when absent/erased."""
    if record is not None and record["erased_at"] is not None:
        return None
    if base is None and (record is None or record["source"] == "warehouse"):
        return None
    fields = {f: (base or {}).get(f) for f in FIELDS}
    edited = sorted(record["fields"]) if record is not None else []
    if record is not None:
        fields.update({k: v for k, v in record["fields"].items() if k in FIELDS})
    customer_id = (record or base or {})["customer_id"]
    return {
        "customer_id": customer_id,
        "source": "crm" if record is not None and record["source"] == "crm" else "warehouse",
        **fields,
        "edited_fields": edited,
        "version": int(record["version"]) if record is not None else 0,
        "updated_at": _json_value(record["updated_at"]) if record is not None else None,
    }


def etag(resource: Mapping[str, Any]) -> str:
    """A strong ETag of a resource's representation (its content and version)."""
    digest = hashlib.sha256(json.dumps(resource, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return f'"{digest}"'


def get(conn: Connection, warehouse: WarehouseSource, customer_id: str) -> tuple[dict[str, Any] | None, Any]:
    """(the merged customer or None, the store record or None)."""
    record = conn.execute(sa.select(store.customers).where(store.customers.c.customer_id == customer_id)).first()
    base = None
    if record is None or record.source == "warehouse":
        base = warehouse_rows(warehouse, [customer_id]).get(customer_id)
    mapping = record._mapping if record is not None else None
    return merge(base, mapping), mapping


def encode_cursor(after: str, filters: dict[str, Any]) -> str:
    payload = {"a": after, "f": filter_digest(filters)}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def filter_digest(filters: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:12]


def decode_cursor(cursor: str, filters: dict[str, Any]) -> str:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after, digest = payload["a"], payload["f"]
    except Exception as exc:
        raise BadCursor("cursor: not a cursor this API returned (pass next_cursor unchanged)") from exc
    if digest != filter_digest(filters):
        raise BadCursor("cursor: it belongs to a listing with other filters; start again without a cursor")
    return str(after)


def list_page(
    conn: Connection, warehouse: WarehouseSource, filters: dict[str, Any], after: str | None, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """One page of customers with ``customer_id > after`` matching ``filters`` (exact match), and whether more
    follow. The warehouse's next ``limit + 1`` rows without the ids the store holds come first; the store's records
    matter only up to the last of those ids (a record beyond it sorts after a full page), so a page merges the few
    edits in its own id range, not all of them."""
    after = after or ""
    store_ids = [
        r[0]
        for r in conn.execute(
            sa.select(store.customers.c.customer_id)
            .where(store.customers.c.customer_id > after)
            .order_by(store.customers.c.customer_id)
        )
    ]
    from_warehouse: list[dict[str, Any]] = []
    with warehouse.connect() as con:
        present = set(_columns(con)) if con is not None else set()
        if con is not None and "customer_id" in present:
            where = ["customer_id > ?"]
            params: list[Any] = [after]
            for key, value in filters.items():
                if key not in present:
                    where.append("false")
                else:
                    where.append(f'"{key}" = ?')
                    params.append(value)
            if store_ids:
                con.register("_crm_store_ids", _ids_frame(store_ids))
                where.append("customer_id not in (select customer_id from _crm_store_ids)")
            rows = _select(con, " and ".join(where), params, limit + 1, present)
            from_warehouse = [m for m in (merge(r, None) for r in rows) if m is not None]
        bound = from_warehouse[-1]["customer_id"] if len(from_warehouse) > limit else None
        query = sa.select(store.customers).where(store.customers.c.customer_id > after)
        if bound is not None:
            query = query.where(store.customers.c.customer_id <= bound)
        records = {r.customer_id: r._mapping for r in conn.execute(query.order_by(store.customers.c.customer_id))}
        # The store's records merged with their warehouse base (edits and erasures hide the warehouse's version).
        overridden = [cid for cid, r in records.items() if r["source"] == "warehouse"]
        bases = _rows_by_id(con, overridden, present) if con is not None and "customer_id" in present else {}
        # a person the API created whom a build made part of a warehouse customer is listed as that customer
        gone = absorbed(con, [cid for cid, r in records.items() if r["source"] == "crm"])
    from_store = []
    for cid, record in records.items():
        if cid in gone:
            continue
        merged = merge(bases.get(cid), record)
        if merged is not None and all(merged.get(k) == v for k, v in filters.items()):
            from_store.append(merged)
    rows_ = sorted(from_store + from_warehouse, key=lambda r: r["customer_id"])
    return rows_[:limit], len(rows_) > limit


def _ids_frame(ids: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame({"customer_id": ids})


def exists(conn: Connection, warehouse: WarehouseSource, customer_id: str) -> bool:
    customer, _ = get(conn, warehouse, customer_id)
    return customer is not None
