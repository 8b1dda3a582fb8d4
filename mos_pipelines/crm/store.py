"""The CRM's operational store: the transactional database the CRM API writes (never DuckDB from a request).

SQLite by default (``$MOS_HOME/crm/operational.sqlite``, WAL mode, one writer at a time with ``BEGIN IMMEDIATE``),
PostgreSQL (or any SQLAlchemy URL) through ``MOS_CRM_DATABASE_URL``; the SQL is SQLAlchemy Core, portable.

Tables (every editable row has ``version``, the base of its ETag, and ``updated_at``):

- ``crm_customers``: manual records. ``source = 'warehouse'`` rows hold overrides of a warehouse customer
  (``fields``: only the edited fields; edits win over ``marts.dim_customers``), ``source = 'crm'`` rows are people
  the API created. ``erased_at`` marks a person whose erasure was requested.
- ``crm_attributes``, ``crm_notes``, ``crm_relationships``: per-customer data the API manages.
- ``crm_webhook_subscriptions``, ``crm_webhook_deliveries`` (the delivery state as the last ``mos crm deliver``
  left it, mirrored from the activation ledger), ``crm_webhook_replays`` (operator requests to resend).
- ``crm_events``: the outbox; one row per change, written in the transaction of the change, ``seq`` ordered.
- ``crm_idempotency_keys``: the stored answer of each POST made with an ``Idempotency-Key``.
- ``crm_erasure_requests``: DELETE of a person, recorded for the next build (``status`` requested, then applied by
  the build that removed the person everywhere); ``crm_erasure_results``: what that build removed, per table.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from mos_pipelines.settings import Settings

DATABASE_URL_ENV = "MOS_CRM_DATABASE_URL"

metadata = sa.MetaData()


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("version", sa.Integer, nullable=False, default=1),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    ]


customers = sa.Table(
    "crm_customers",
    metadata,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),  # warehouse (overrides) | crm (created by the API)
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("erased_at", sa.DateTime),
    sa.Column("updated_by", sa.String(64)),
    *_stamps(),
)

attributes = sa.Table(
    "crm_attributes",
    metadata,
    sa.Column("attribute_id", sa.String(40), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("value", sa.JSON),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("confidence", sa.Float),
    sa.Column("updated_by", sa.String(64)),
    *_stamps(),
    sa.UniqueConstraint("customer_id", "name", name="uq_crm_attributes_customer_name"),
)

notes = sa.Table(
    "crm_notes",
    metadata,
    sa.Column("note_id", sa.String(40), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("author", sa.String(64), nullable=False),
    *_stamps(),
)

relationships = sa.Table(
    "crm_relationships",
    metadata,
    sa.Column("relationship_id", sa.String(40), primary_key=True),
    sa.Column("from_customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("to_customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("weight", sa.Float, nullable=False),
    sa.Column("evidence", sa.Text),
    sa.Column("updated_by", sa.String(64)),
    *_stamps(),
)

subscriptions = sa.Table(
    "crm_webhook_subscriptions",
    metadata,
    sa.Column("subscription_id", sa.String(40), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("filters", sa.JSON, nullable=False),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("after_seq", sa.BigInteger, nullable=False),  # events with a larger seq are for this subscription
    sa.Column("enqueued_seq", sa.BigInteger, nullable=False),  # events up to here are in the ledger
    sa.Column("created_by", sa.String(64)),
    *_stamps(),
)

deliveries = sa.Table(
    "crm_webhook_deliveries",
    metadata,
    sa.Column("subscription_id", sa.String(40), primary_key=True),
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

replays = sa.Table(
    "crm_webhook_replays",
    metadata,
    sa.Column("replay_id", sa.String(40), primary_key=True),
    sa.Column("subscription_id", sa.String(40), nullable=False),
    sa.Column("statuses", sa.JSON, nullable=False),
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("requested_at", sa.DateTime, nullable=False),
    sa.Column("applied_at", sa.DateTime),
    sa.Column("requeued", sa.Integer),
)

events = sa.Table(
    "crm_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("customer_id", sa.String(64), index=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("actor", sa.String(64)),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

idempotency_keys = sa.Table(
    "crm_idempotency_keys",
    metadata,
    sa.Column("principal_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("etag", sa.String(80)),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

erasure_requests = sa.Table(
    "crm_erasure_requests",
    metadata,
    sa.Column("request_id", sa.String(40), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),  # requested | applied
    sa.Column("requested_at", sa.DateTime, nullable=False),
    sa.Column("applied_at", sa.DateTime),
)

erasure_results = sa.Table(
    "crm_erasure_results",
    metadata,
    sa.Column("request_id", sa.String(40), primary_key=True),
    sa.Column("completed_at", sa.DateTime, nullable=False),
    sa.Column("removed", sa.JSON, nullable=False),  # rows removed per warehouse table / activation file
)

EVENT_TYPES = (
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.merged",
    "note.created",
    "attribute.changed",
)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def database_url(settings: Settings) -> str:
    """``MOS_CRM_DATABASE_URL`` if set, else the SQLite file under ``$MOS_HOME/crm/``."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        return url
    return f"sqlite:///{settings.mos_home / 'crm' / 'operational.sqlite'}"


class Store:
    """An engine over the operational store; ``write()`` and ``read()`` give a connection in a transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        path = sqlite_path(url)
        if path is not None:  # the store's folder is made by whoever opens it, not by asking where it is
            path.parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = sa.create_engine(url, **kwargs)
        if self.is_sqlite:
            _sqlite_transactions(self.engine)
        metadata.create_all(self.engine)

    @classmethod
    def open(cls, settings: Settings) -> Store:
        return cls(database_url(settings))

    @classmethod
    def open_existing(cls, settings: Settings) -> Store | None:
        """The store, or None when there is none yet (a build or a sensor tick never creates the SQLite file)."""
        url = database_url(settings)
        path = sqlite_path(url)
        if path is not None and not path.exists():
            return None
        return cls(url)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: on SQLite ``BEGIN IMMEDIATE`` (the write lock is taken at the start, so two
        writers serialise instead of failing on lock upgrade); elsewhere the database's default isolation plus the
        version compare-and-set of every update."""
        with self.engine.connect().execution_options(mos_immediate=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_transactions(engine: Engine) -> None:
    """pysqlite's own transaction handling is bypassed (SQLAlchemy's documented recipe) so that a write
    transaction can start with BEGIN IMMEDIATE; WAL lets readers run beside the writer."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("pragma journal_mode=wal")
        cursor.execute("pragma busy_timeout=30000")
        cursor.execute("pragma synchronous=normal")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("mos_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def emit(
    conn: Connection,
    type_: str,
    customer_id: str | None,
    data: dict[str, Any],
    actor: str | None,
    event_id: str | None = None,
) -> str:
    """Append an event to the outbox, in the caller's transaction (it commits or rolls back with the change)."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}; expected one of {', '.join(EVENT_TYPES)}")
    event_id = event_id or new_id("evt")
    conn.execute(
        events.insert().values(
            event_id=event_id,
            type=type_,
            customer_id=customer_id,
            data=json.loads(json.dumps(data, default=str)),
            actor=actor,
            created_at=utcnow(),
        )
    )
    return event_id


def row_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
