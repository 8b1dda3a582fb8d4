"""The activation ledger: what each destination holds, what is on its way, and every attempt.

``ops.activation_ledger`` has one row per destination and record key. Its *acknowledged* columns
(``acked_payload_hash``, ``is_present``, ``remove_payload``, ``change_seq``) describe what the
destination confirmed it holds; they change only when a change is acknowledged. The *change*
columns (``operation``, ``payload_hash``, ``idempotency_key``, ``status``, ``attempts``,
``last_error``) describe the change in progress or the last one done::

    (new / changed / removed in the sync model)
        └─► pending ──► in_flight ──► acknowledged                     (destination confirmed)
                           │  ├────► failed ──(next run)──► in_flight  (retryable, attempts left)
                           │  └────► dead_letter                        (4xx, or attempts used up)
                           └─(crash)─► reconciled at the next run's start:
                                         delivered (looked up by idempotency key) ─► acknowledged
                                         not delivered ─► pending (sent again, same key)
                                         cannot tell (channel has no lookup) ─► unknown (reported)

``dead_letter`` and ``unknown`` rows wait for a new change of the record or for an operator
(`mos activation requeue`). The idempotency key is derived from (destination, record key, number of
changes acknowledged before, operation, payload hash): a retry of a change reuses it, a new change
gets a new one. ``ops.activation_attempts`` is the audit: one row per attempt, reconciliation,
consent block or approval hold, with the recipient hashed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

STATUSES = ("pending", "in_flight", "acknowledged", "failed", "dead_letter", "unknown")
OPEN_STATUSES = ("pending", "failed")  # changes a run (re)sends
STUCK_STATUSES = ("dead_letter", "unknown")  # changes that wait for an operator or a new change

DDL = """
create schema if not exists ops;
create table if not exists ops.activation_ledger (
    destination varchar not null,
    record_key varchar not null,
    customer_id varchar,
    operation varchar not null,
    payload_hash varchar not null,
    idempotency_key varchar not null,
    status varchar not null,
    attempts integer not null,
    last_error varchar,
    change_seq integer not null,
    acked_payload_hash varchar,
    is_present boolean not null,
    remove_payload json,
    pending_remove_payload json,
    batch_ref varchar,
    last_run_id varchar,
    first_seen_at timestamp not null,
    updated_at timestamp not null,
    acknowledged_at timestamp,
    primary key (destination, record_key)
);
create table if not exists ops.activation_attempts (
    run_id varchar not null,
    destination varchar not null,
    channel varchar not null,
    record_key varchar not null,
    recipient_hash varchar,
    idempotency_key varchar,
    operation varchar,
    attempt integer,
    response_code integer,
    status varchar not null,
    reason varchar,
    attempted_at timestamp not null,
    duration_ms double
);
"""

ATTEMPT_COLUMNS = (
    "run_id",
    "destination",
    "channel",
    "record_key",
    "recipient_hash",
    "idempotency_key",
    "operation",
    "attempt",
    "response_code",
    "status",
    "reason",
    "attempted_at",
    "duration_ms",
)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def payload_hash(payload: Any) -> str:
    """SHA-256 of the payload's canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def idempotency_key(destination: str, record_key: str, change_seq: int, operation: str, payload_digest: str) -> str:
    return hashlib.sha256(f"{destination}|{record_key}|{change_seq}|{operation}|{payload_digest}".encode()).hexdigest()[
        :32
    ]


@dataclass
class Prepared:
    """One sync-model row as a channel will send it."""

    record_key: str
    customer_id: str | None
    payload: dict[str, Any]
    payload_hash: str
    recipient_hash: str | None = None
    remove_payload: dict[str, Any] | None = None  # what removing it later needs (hashed ids, never raw contacts)
    approval_id: str | None = None  # the approval its copy needed
    hold: str | None = None  # "<status>: <why>" when it must not be sent now (copy awaiting approval, rejected)


@dataclass
class Change:
    """A change to send: an upsert of a prepared row or the removal of a record the destination holds."""

    record_key: str
    customer_id: str | None
    operation: str  # upsert | remove
    payload: dict[str, Any]
    payload_hash: str
    idempotency_key: str
    change_seq: int
    attempts: int = 0
    recipient_hash: str | None = None
    remove_payload: dict[str, Any] | None = None  # of the record as the destination holds it now
    pending_remove_payload: dict[str, Any] | None = None  # of the record once this change is acknowledged
    is_new: bool = True  # a new change (written as pending) rather than one resumed from the ledger


@dataclass
class Diff:
    changes: list[Change] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # open changes no longer wanted (destination already right)
    unchanged: int = 0
    stuck: dict[str, int] = field(default_factory=dict)  # status -> records waiting (dead_letter, unknown)


def load(con: duckdb.DuckDBPyConnection, destination: str) -> dict[str, dict[str, Any]]:
    """The ledger rows of one destination by record key."""
    frame = con.execute("select * from ops.activation_ledger where destination = ?", [destination]).df()
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for row in rows:
        for column in ("remove_payload", "pending_remove_payload"):
            if isinstance(row[column], str):
                row[column] = json.loads(row[column])
    return {row["record_key"]: row for row in rows}


def diff(
    destination: str, desired: dict[str, Prepared], ledger: dict[str, dict[str, Any]], frozen: set[str] | None = None
) -> Diff:
    """What to send so the destination holds ``desired``: new and changed records, and removals of
    records it holds that are no longer desired. ``frozen`` keys (e.g. copy awaiting approval) are
    left as they are. Open changes that are still wanted keep their idempotency key."""
    frozen = frozen or set()
    result = Diff()

    def wait(status: str) -> None:
        result.stuck[status] = result.stuck.get(status, 0) + 1

    for key, prepared in desired.items():
        if key in frozen:
            continue
        row = ledger.get(key)
        if row is None:
            result.changes.append(_new_change(destination, prepared, 0, None))
            continue
        if row["status"] in ("in_flight", "unknown"):  # maybe delivered: nothing more until it is resolved
            wait(row["status"])
            continue
        holds_it = bool(row["is_present"]) and row["acked_payload_hash"] == prepared.payload_hash
        open_same = row["operation"] == "upsert" and row["payload_hash"] == prepared.payload_hash
        if row["status"] == "acknowledged":
            if holds_it:
                result.unchanged += 1
            else:
                result.changes.append(_new_change(destination, prepared, row["change_seq"], row["remove_payload"]))
        elif open_same:  # the same change is still open: resume it with its key, unless it waits for an operator
            if row["status"] == "dead_letter":
                wait("dead_letter")
            else:
                result.changes.append(_resumed(prepared, row))
        elif holds_it:  # an open removal or update that is no longer wanted
            result.cancelled.append(key)
        else:  # the open change is outdated: replace it
            result.changes.append(_new_change(destination, prepared, row["change_seq"], row["remove_payload"]))
    for key, row in ledger.items():
        if key in desired or key in frozen:
            continue
        if row["status"] in ("in_flight", "unknown"):
            wait(row["status"])
            continue
        if row["status"] == "acknowledged" and not row["is_present"]:
            continue  # removed (or never added)
        if row["operation"] == "remove" and row["status"] != "acknowledged":
            if row["status"] == "dead_letter":
                wait("dead_letter")
            else:
                result.changes.append(
                    Change(
                        key,
                        row["customer_id"],
                        "remove",
                        {"record_key": key},
                        row["payload_hash"],
                        row["idempotency_key"],
                        row["change_seq"],
                        row["attempts"],
                        remove_payload=row["remove_payload"],
                        is_new=False,
                    )
                )
            continue
        if not row["is_present"]:  # an upsert that never reached the destination: nothing to undo
            result.cancelled.append(key)
            continue
        digest = payload_hash({"remove": key})
        result.changes.append(
            Change(
                key,
                row["customer_id"],
                "remove",
                {"record_key": key},
                digest,
                idempotency_key(destination, key, row["change_seq"], "remove", digest),
                row["change_seq"],
                remove_payload=row["remove_payload"],
            )
        )
    return result


def _new_change(destination: str, prepared: Prepared, change_seq: int, remove_payload: dict | None) -> Change:
    return Change(
        prepared.record_key,
        prepared.customer_id,
        "upsert",
        prepared.payload,
        prepared.payload_hash,
        idempotency_key(destination, prepared.record_key, change_seq, "upsert", prepared.payload_hash),
        change_seq,
        0,
        prepared.recipient_hash,
        remove_payload,
        prepared.remove_payload,
    )


def _resumed(prepared: Prepared, row: dict[str, Any]) -> Change:
    return Change(
        prepared.record_key,
        prepared.customer_id,
        "upsert",
        prepared.payload,
        prepared.payload_hash,
        row["idempotency_key"],
        row["change_seq"],
        row["attempts"],
        prepared.recipient_hash,
        row["remove_payload"],
        prepared.remove_payload,
        is_new=False,
    )


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def write_pending(
    con: duckdb.DuckDBPyConnection, destination: str, changes: list[Change], run_id: str, now: datetime.datetime
) -> None:
    """Record new changes as pending (one transaction): insert new records, update existing ones'
    change columns; what the destination acknowledged is untouched."""
    new = [c for c in changes if c.is_new]
    if not new:
        return
    frame = pd.DataFrame(
        [
            {
                "destination": destination,
                "record_key": c.record_key,
                "customer_id": c.customer_id,
                "operation": c.operation,
                "payload_hash": c.payload_hash,
                "idempotency_key": c.idempotency_key,
                "status": "pending",
                "attempts": 0,
                "last_error": None,
                "change_seq": c.change_seq,
                "acked_payload_hash": None,
                "is_present": False,
                "remove_payload": None,
                "pending_remove_payload": _json(c.pending_remove_payload),
                "batch_ref": None,
                "last_run_id": run_id,
                "first_seen_at": now,
                "updated_at": now,
                "acknowledged_at": None,
            }
            for c in new
        ]
    )
    con.register("_ledger_pending", frame)
    try:
        con.execute(
            """
            insert into ops.activation_ledger by name
            select * replace (cast(remove_payload as json) as remove_payload,
                              cast(pending_remove_payload as json) as pending_remove_payload,
                              cast(acknowledged_at as timestamp) as acknowledged_at)
            from _ledger_pending
            on conflict (destination, record_key) do update set
                customer_id = excluded.customer_id, operation = excluded.operation,
                payload_hash = excluded.payload_hash, idempotency_key = excluded.idempotency_key,
                status = 'pending', attempts = 0, last_error = null,
                pending_remove_payload = excluded.pending_remove_payload, batch_ref = null,
                last_run_id = excluded.last_run_id, updated_at = excluded.updated_at
            """
        )
    finally:
        con.unregister("_ledger_pending")


def cancel(con: duckdb.DuckDBPyConnection, destination: str, keys: list[str], now: datetime.datetime) -> None:
    """Close open changes that are no longer wanted: the destination already holds what is desired."""
    if keys:
        con.execute(
            "update ops.activation_ledger set status = 'acknowledged', operation = case when is_present "
            "then 'upsert' else 'remove' end, payload_hash = coalesce(acked_payload_hash, payload_hash), "
            "pending_remove_payload = null, attempts = 0, last_error = null, updated_at = ? "
            "where destination = ? and record_key in (select unnest(?))",
            [now, destination, keys],
        )


def mark_in_flight(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    keys: list[str],
    run_id: str,
    now: datetime.datetime,
    batch_ref: str | None = None,
) -> None:
    """Before a send: the changes are in flight (one more attempt), so a crash leaves a trace."""
    con.execute(
        "update ops.activation_ledger set status = 'in_flight', attempts = attempts + 1, batch_ref = ?, "
        "last_run_id = ?, updated_at = ? where destination = ? and record_key in (select unnest(?))",
        [batch_ref, run_id, now, destination, keys],
    )


def acknowledge(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    keys: list[str],
    now: datetime.datetime,
    extra_attempts: dict[str, int] | None = None,
) -> None:
    """The destination confirmed these changes: advance what it holds."""
    if not keys:
        return
    con.execute(
        """
        update ops.activation_ledger set
            status = 'acknowledged',
            acked_payload_hash = case when operation = 'upsert' then payload_hash end,
            is_present = operation = 'upsert',
            remove_payload = case when operation = 'upsert' then pending_remove_payload end,
            pending_remove_payload = null,
            change_seq = change_seq + 1,
            last_error = null,
            updated_at = ?,
            acknowledged_at = ?
        where destination = ? and record_key in (select unnest(?))
        """,
        [now, now, destination, keys],
    )
    _add_attempts(con, destination, extra_attempts)


def set_status(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    keys: list[str],
    status: str,
    now: datetime.datetime,
    errors: dict[str, str | None] | None = None,
    extra_attempts: dict[str, int] | None = None,
) -> None:
    """Move changes to ``status`` (pending, failed, dead_letter, unknown) with their last error."""
    if not keys:
        return
    if status not in STATUSES:
        raise ValueError(f"unknown ledger status {status!r}")
    errors = errors or {}
    con.executemany(
        "update ops.activation_ledger set status = ?, last_error = ?, updated_at = ? "
        "where destination = ? and record_key = ?",
        [[status, errors.get(k), now, destination, k] for k in keys],
    )
    _add_attempts(con, destination, extra_attempts)


def _add_attempts(con: duckdb.DuckDBPyConnection, destination: str, extra: dict[str, int] | None) -> None:
    extra = {k: v for k, v in (extra or {}).items() if v}
    if extra:
        con.executemany(
            "update ops.activation_ledger set attempts = attempts + ? where destination = ? and record_key = ?",
            [[n, destination, k] for k, n in extra.items()],
        )


def in_flight(con: duckdb.DuckDBPyConnection, destination: str) -> list[dict[str, Any]]:
    """Changes a crashed run left in flight."""
    return [row for row in load(con, destination).values() if row["status"] == "in_flight"]


def requeue(con: duckdb.DuckDBPyConnection, destination: str, statuses: tuple[str, ...], now: datetime.datetime) -> int:
    """An operator's decision: send these stuck changes again (same idempotency key, attempts reset)."""
    bad = set(statuses) - set(STUCK_STATUSES) - {"failed"}
    if bad:
        raise ValueError(f"only {', '.join(STUCK_STATUSES + ('failed',))} changes can be requeued, not {sorted(bad)}")
    count = con.execute(
        "select count(*) from ops.activation_ledger where destination = ? and status in (select unnest(?))",
        [destination, list(statuses)],
    ).fetchall()[0][0]
    con.execute(
        "update ops.activation_ledger set status = 'pending', attempts = 0, updated_at = ? "
        "where destination = ? and status in (select unnest(?))",
        [now, destination, list(statuses)],
    )
    return int(count)


def record_attempts(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Append audit rows (keys of ATTEMPT_COLUMNS; missing ones are null)."""
    if not rows:
        return
    frame = pd.DataFrame([{c: row.get(c) for c in ATTEMPT_COLUMNS} for row in rows], columns=list(ATTEMPT_COLUMNS))
    frame = frame.astype({"attempt": "Int64", "response_code": "Int64", "duration_ms": "Float64"})
    con.register("_activation_attempts", frame)
    try:
        con.execute(
            f"insert into ops.activation_attempts ({', '.join(ATTEMPT_COLUMNS)}) "
            f"select {', '.join(ATTEMPT_COLUMNS)} from _activation_attempts"
        )
    finally:
        con.unregister("_activation_attempts")


def summary(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per destination and status: records and those the destination holds."""
    return con.execute(
        """select destination, status, count(*) as records, count(*) filter (where is_present) as present
        from ops.activation_ledger group by all order by destination, status"""
    ).df()
