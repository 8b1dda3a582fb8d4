"""Signed webhooks for CRM changes: signing, the receiver's verification recipe, and delivery through the
activation ledger.

Each request is a JSON POST of one event (an outbox row of ``crm_events``) with headers::

    X-MOS-Timestamp: 1796000000            (unix seconds when this attempt was signed)
    X-MOS-Nonce: 3f0c…                     (random per attempt; also in the body as "nonce")
    X-MOS-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>
    X-MOS-Event: customer.updated
    Idempotency-Key: <one per change and subscriber: the same on every retry>

A receiver verifies (``verify``; docs/CRM_WEBHOOKS.md shows it in a few lines of any language): recompute the HMAC
over the timestamp, a dot and the raw body, compare in constant time; reject a timestamp more than 5 minutes from
its clock; reject a nonce it has seen (the nonce is inside the signed body, so it cannot be swapped); and
deduplicate on Idempotency-Key (a retry after a lost answer carries the same key).

Delivery (``deliver``; `mos crm deliver` and the Dagster asset ``crm_webhook_deliveries``) runs outside requests:
each subscription is a destination ``crm_webhook__<subscription_id>`` of ``ops.activation_ledger`` whose record
keys are event ids: a change is written pending once, marked in flight before its POST, then acknowledged or failed
or dead-lettered with its attempts audited (``ops.activation_attempts``); retries, backoff and Retry-After are
activation's (``channels.deliver_with_retries``, ``config/activation.yaml`` retry). Changes go in batches of
``BATCH_SIZE`` (marked in flight in one commit, outcomes written in another). A run killed mid-send leaves its batch
in flight; the next run sends it again with the same Idempotency-Keys (the webhook channel cannot look a delivery up),
so a receiver that deduplicates on the key processes each change once.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import requests
import sqlalchemy as sa

from mos_pipelines.activation import ledger
from mos_pipelines.activation.channels import AttemptOutcome, deliver_with_retries
from mos_pipelines.activation.channels.webhook import outcome_of
from mos_pipelines.activation.retry import RateLimiter
from mos_pipelines.configuration.activation import RetrySettings
from mos_pipelines.crm import store as st
from mos_pipelines.warehouse import table_exists, transaction

TOLERANCE_SECONDS = 300
BATCH_SIZE = (
    20  # changes marked in flight together (one commit before, one after): at most this many resent after a crash
)
DESTINATION_PREFIX = "crm_webhook__"
SIGNATURE_HEADER, TIMESTAMP_HEADER, NONCE_HEADER = "X-MOS-Signature", "X-MOS-Timestamp", "X-MOS-Nonce"
Log = Callable[[str], None]


# ---------------------------------------------------------------- signing and verification


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``timestamp + "." + body`` with the subscription's secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signed_request(secret: str, event: dict[str, Any], *, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and signature headers of one attempt: a fresh nonce (in the body, so it is signed) and timestamp."""
    nonce = secrets.token_hex(16)
    body = json.dumps({**event, "nonce": nonce}, sort_keys=True, separators=(",", ":"), default=str).encode()
    timestamp = str(int(time.time() if now is None else now))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        "X-MOS-Event": str(event.get("type")),
    }
    return body, headers


class VerificationError(ValueError):
    """A webhook request that must be rejected; ``reason``: signature, stale, replayed or malformed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NonceCache:
    """Nonces seen within the tolerance window (thread-safe, in memory: a receiver with several processes keeps
    them in a shared store instead, e.g. Redis SET NX with an expiry)."""

    def __init__(self, ttl_seconds: float = 2 * TOLERANCE_SECONDS) -> None:
        self.ttl = ttl_seconds
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, nonce: str, now: float) -> bool:
        """True if the nonce is new (and remember it); False if it was seen."""
        with self._lock:
            for old in [n for n, t in self._seen.items() if t < now - self.ttl]:
                del self._seen[old]
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            return True


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    nonces: NonceCache,
    *,
    now: float | None = None,
    tolerance_seconds: float = TOLERANCE_SECONDS,
) -> dict[str, Any]:
    """The event of a verified request, or ``VerificationError``: bad signature, a timestamp more than
    ``tolerance_seconds`` away, a nonce seen before, or a header nonce that is not the signed one."""
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp, nonce, given = (lower.get(h.lower()) for h in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER))
    if not timestamp or not nonce or not given:
        raise VerificationError("malformed", f"missing {TIMESTAMP_HEADER}, {NONCE_HEADER} or {SIGNATURE_HEADER}")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise VerificationError("malformed", f"{TIMESTAMP_HEADER} is not unix seconds: {timestamp!r}") from exc
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, part.strip()) for part in given.split(",")):
        raise VerificationError("signature", "signature does not match the body and timestamp")
    now = time.time() if now is None else now
    if abs(now - sent_at) > tolerance_seconds:
        raise VerificationError("stale", f"timestamp {sent_at} is {abs(now - sent_at):.0f} s from now")
    event = json.loads(body)
    if event.get("nonce") != nonce:
        raise VerificationError("malformed", "the nonce header is not the signed nonce")
    if not nonces.add(nonce, now):
        raise VerificationError("replayed", f"nonce {nonce} was seen before: a replayed request")
    return event


# ---------------------------------------------------------------- which events go to which subscription


def matches(subscription: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` (an outbox row) is for ``subscription``: its type is subscribed and its filters hold."""
    if event["type"] not in subscription["events"]:
        return False
    data = event["data"] or {}
    record = data.get("customer") or data.get("attribute") or data.get("note") or {}
    for key, wanted in (subscription["filters"] or {}).items():
        allowed = {wanted} if isinstance(wanted, str) else set(wanted)
        if key == "fields":
            if not allowed & set(data.get("changed_fields") or []):
                return False
        elif key == "attribute":
            if data.get("name") not in allowed:
                return False
        elif record.get(key) not in allowed:
            return False
    return True


def envelope(subscription_id: str, event: Mapping[str, Any], delivery_id: str) -> dict[str, Any]:
    created = event["created_at"]
    return {
        "id": event["event_id"],
        "type": event["type"],
        "seq": event["seq"],
        "created_at": created.isoformat() if hasattr(created, "isoformat") else created,
        "customer_id": event["customer_id"],
        "actor": event["actor"],
        "data": event["data"],
        "subscription_id": subscription_id,
        "delivery_id": delivery_id,
    }


# ---------------------------------------------------------------- build events: golden-record changes


STAGES_SEEN = "ops.crm_lifecycle_stages_seen"  # the stage each customer had when the last events were made


def _build_event_id(*parts: object) -> str:
    return "evt_build_" + hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:24]


def _id_changes(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, dict[str, Any]]]:
    """Merges and splits of ``marts.fct_customer_id_changes`` (a split is a ``customer.updated``)."""
    if not table_exists(con, "marts", "fct_customer_id_changes"):
        return []
    rows = con.execute(
        """select run_number, customer_id, previous_customer_id, change, count(*) as nodes, max(changed_at) as at
        from marts.fct_customer_id_changes where change in ('merged', 'split') and previous_customer_id is not null
        group by all order by run_number, customer_id, previous_customer_id"""
    ).fetchall()
    out = []
    for run, customer_id, previous, change, nodes, at in rows:
        data = {
            "customer_id": customer_id,
            "previous_customer_id": previous,
            "change": change,
            "nodes_moved": int(nodes),
            "build_run": int(run),
            "changed_at": str(at),
            "changed_fields": ["customer_id"],
        }
        kind = "customer.merged" if change == "merged" else "customer.updated"
        # the original id formula, so events already in an outbox keep their ids
        out.append((_build_event_id(run, customer_id, previous, change), kind, data))
    return out


def _created_people_matched(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, dict[str, Any]]]:
    """People the API created whom identity made part of a warehouse customer (``customer.merged``, change
    ``matched``): the API answers their id with a 308 to that customer from now on."""
    if not table_exists(con, "marts", "dim_customer_identity_map"):
        return []
    rows = con.execute(
        """select source_record_id, min(customer_id) from marts.dim_customer_identity_map
        where node_type = 'crm' and source_system = 'mos_crm' and source_record_id is not null
        group by 1 order by 1"""
    ).fetchall()
    return [
        (
            _build_event_id("matched", crm_id, customer_id),
            "customer.merged",
            {
                "customer_id": customer_id,
                "previous_customer_id": crm_id,
                "change": "matched",
                "changed_fields": ["customer_id"],
            },
        )
        for crm_id, customer_id in rows
    ]


def _stage_changes(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, dict[str, Any]]]:
    """Lifecycle-stage changes since the stages were last seen (``customer.updated``, change ``stage``), and the
    seen stages brought up to date. The first time there is nothing to compare with: the stages become the baseline
    and no event is made (a new subscriber hears changes, not the whole customer base)."""
    if not table_exists(con, "marts", "dim_customer_lifecycle"):
        return []
    schema = STAGES_SEEN.split(".")[0]
    con.execute(f"create schema if not exists {schema}")
    first = not table_exists(con, *STAGES_SEEN.split("."))
    if first:
        con.execute(
            f"create table {STAGES_SEEN} as select customer_id, lifecycle_stage, current_timestamp as seen_at "
            "from marts.dim_customer_lifecycle"
        )
        return []
    rows = con.execute(
        f"""select now.customer_id, seen.lifecycle_stage, now.lifecycle_stage, cast(now.stage_entered_at as varchar),
            now.stage_reason
        from marts.dim_customer_lifecycle as now
        inner join {STAGES_SEEN} as seen on now.customer_id = seen.customer_id
        where now.lifecycle_stage is distinct from seen.lifecycle_stage
        order by now.customer_id"""
    ).fetchall()
    out = [
        (
            _build_event_id("stage", customer_id, before, after, entered),
            "customer.updated",
            {
                "customer_id": customer_id,
                "change": "stage",
                "previous_stage": before,
                "lifecycle_stage": after,
                "stage_entered_at": entered,
                "reason": reason,
                "changed_fields": ["lifecycle_stage"],
            },
        )
        for customer_id, before, after, entered, reason in rows
    ]
    con.execute(
        f"create or replace table {STAGES_SEEN} as select customer_id, lifecycle_stage, current_timestamp as seen_at "
        "from marts.dim_customer_lifecycle"
    )
    return out


def ingest_build_events(con: duckdb.DuckDBPyConnection, db: st.Store) -> int:
    """Golden-record changes builds made become outbox events, once each (the event id is derived from the change;
    an id already in the outbox is skipped): customer-id merges and splits (``marts.fct_customer_id_changes``),
    people the API created whom identity matched to a warehouse customer, and lifecycle-stage changes since the
    last time stages were seen (``ops.crm_lifecycle_stages_seen``; several builds between two deliveries make one
    change, from the stage seen then to the stage now). ``con`` must be writable (the seen stages)."""
    found = _id_changes(con) + _created_people_matched(con) + _stage_changes(con)
    if not found:
        return 0
    added = 0
    with db.write() as conn:
        known = {
            r[0] for r in conn.execute(sa.select(st.events.c.event_id).where(st.events.c.event_id.like("evt_build_%")))
        }
        for event_id, kind, data in found:
            if event_id in known:
                continue
            st.emit(conn, kind, data["customer_id"], data, "build", event_id=event_id)
            known.add(event_id)
            added += 1
    return added


# ---------------------------------------------------------------- delivery


@dataclass
class SubscriptionReport:
    subscription_id: str
    destination: str
    enqueued: int = 0
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    dead_letter: int = 0
    attempts: int = 0
    resent_after_crash: int = 0
    requeued: int = 0


@dataclass
class WebhookReport:
    run_id: str
    build_events: int = 0
    subscriptions: list[SubscriptionReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def destination_of(subscription_id: str) -> str:
    return DESTINATION_PREFIX + subscription_id


def _post(session: requests.Session, url: str, secret: str, event: dict[str, Any], timeout: float) -> AttemptOutcome:
    body, headers = signed_request(secret, event)
    headers["Idempotency-Key"] = event["delivery_id"]
    return outcome_of(session.post(url, data=body, headers=headers, timeout=timeout))


def deliver(
    con: duckdb.DuckDBPyConnection,
    db: st.Store,
    retry: RetrySettings,
    run_id: str,
    *,
    timeout_seconds: float = 10.0,
    rate_limit_per_second: float | None = None,
    batch_size: int = BATCH_SIZE,
    sleep: Callable[[float], None] = time.sleep,
    log: Log | None = None,
) -> WebhookReport:
    """Send every subscribed change not yet acknowledged, once per subscriber (see the module docstring).
    ``con`` is a writable warehouse connection (the ledger is ``ops.activation_ledger``)."""
    log = log or (lambda message: None)
    report = WebhookReport(run_id)
    ledger.ensure_tables(con)
    report.build_events = ingest_build_events(con, db)
    with db.read() as conn:
        active = [
            dict(r._mapping)
            for r in conn.execute(
                sa.select(st.subscriptions)
                .where(st.subscriptions.c.active.is_(True))
                .order_by(st.subscriptions.c.created_at)
            )
        ]
    session = requests.Session()
    try:
        for subscription in active:
            report.subscriptions.append(
                _deliver_one(
                    con,
                    db,
                    subscription,
                    retry,
                    run_id,
                    session,
                    timeout_seconds,
                    RateLimiter(rate_limit_per_second),
                    sleep,
                    log,
                    batch_size,
                )
            )
    finally:
        session.close()
    return report


def _deliver_one(
    con: duckdb.DuckDBPyConnection,
    db: st.Store,
    sub: dict[str, Any],
    retry: RetrySettings,
    run_id: str,
    session: requests.Session,
    timeout: float,
    limiter: RateLimiter,
    sleep: Callable[[float], None],
    log: Log,
    batch_size: int,
) -> SubscriptionReport:
    sid = sub["subscription_id"]
    name = destination_of(sid)
    result = SubscriptionReport(sid, name)
    now = ledger.utcnow()
    # 1. operator replays (dead letters and the like back to pending, same key)
    with db.read() as conn:
        pending_replays = list(
            conn.execute(
                sa.select(st.replays).where(st.replays.c.subscription_id == sid, st.replays.c.applied_at.is_(None))
            )
        )
    for replay in pending_replays:
        with transaction(con):
            count = ledger.requeue(con, name, tuple(replay.statuses), now)
        with db.write() as conn:
            conn.execute(
                st.replays.update()
                .where(st.replays.c.replay_id == replay.replay_id)
                .values(applied_at=st.utcnow(), requeued=count)
            )
        result.requeued += count
    # 2. changes a killed run left in flight: not known to be delivered, sent again with their key
    stuck = [r["record_key"] for r in ledger.in_flight(con, name)]
    if stuck:
        with transaction(con):
            ledger.set_status(
                con,
                name,
                stuck,
                "pending",
                now,
                {k: "in flight when a run stopped: sent again with the same key" for k in stuck},
            )
            ledger.record_attempts(
                con,
                [
                    {
                        "run_id": run_id,
                        "destination": name,
                        "channel": "webhook",
                        "record_key": k,
                        "status": "reconciled_not_delivered",
                        "reason": "resent with the same Idempotency-Key",
                        "attempted_at": now,
                    }
                    for k in stuck
                ],
            )
        result.resent_after_crash = len(stuck)
    # 3. new events for this subscription become pending changes (an event already in the ledger is skipped)
    with db.read() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                sa.select(st.events).where(st.events.c.seq > sub["enqueued_seq"]).order_by(st.events.c.seq)
            )
        ]
    wanted = [e for e in rows if matches(sub, e)]
    if wanted:
        present = {
            r[0]
            for r in con.execute(
                "select record_key from ops.activation_ledger where destination = ? "
                "and record_key in (select unnest(?))",
                [name, [e["event_id"] for e in wanted]],
            ).fetchall()
        }
        changes = []
        for e in wanted:
            if e["event_id"] in present:
                continue
            digest = ledger.payload_hash({"event_id": e["event_id"], "data": e["data"]})
            changes.append(
                ledger.Change(
                    e["event_id"],
                    e["customer_id"],
                    "upsert",
                    {},
                    digest,
                    ledger.idempotency_key(name, e["event_id"], 0, "upsert", digest),
                    0,
                )
            )
        with transaction(con):
            ledger.write_pending(con, name, changes, run_id, now)
        result.enqueued = len(changes)
    if rows:
        with db.write() as conn:
            conn.execute(
                st.subscriptions.update()
                .where(st.subscriptions.c.subscription_id == sid)
                .values(enqueued_seq=max(e["seq"] for e in rows))
            )
    # 4. send the open changes in event order
    open_rows = [r for r in ledger.load(con, name).values() if r["status"] in ledger.OPEN_STATUSES]
    if open_rows:
        with db.read() as conn:
            by_id = {
                r.event_id: dict(r._mapping)
                for r in conn.execute(
                    sa.select(st.events).where(st.events.c.event_id.in_([r["record_key"] for r in open_rows]))
                )
            }
        ordered = sorted(open_rows, key=lambda r: by_id.get(r["record_key"], {}).get("seq", 0))
        for first in range(0, len(ordered), batch_size):
            _send_batch(
                con,
                name,
                sub,
                ordered[first : first + batch_size],
                by_id,
                retry,
                run_id,
                session,
                timeout,
                limiter,
                sleep,
                result,
            )
    _mirror(con, db, sid, name)
    log(
        f"{sid}: {result.enqueued} new, {result.acknowledged} acknowledged, {result.failed} failed, "
        f"{result.dead_letter} dead letters"
    )
    return result


def _send_batch(
    con: duckdb.DuckDBPyConnection,
    name: str,
    sub: dict[str, Any],
    rows: list[dict[str, Any]],
    by_id: dict[str, dict[str, Any]],
    retry: RetrySettings,
    run_id: str,
    session: requests.Session,
    timeout: float,
    limiter: RateLimiter,
    sleep: Callable[[float], None],
    result: SubscriptionReport,
) -> None:
    """One batch: marked in flight (committed), each change POSTed with its retries, then the outcomes and the audit
    written in one transaction. A run killed inside the batch leaves it in flight: resent with the same keys."""
    missing = [r["record_key"] for r in rows if r["record_key"] not in by_id]
    if missing:  # the outbox row is gone (it is append-only: should not happen)
        with transaction(con):
            ledger.set_status(
                con, name, missing, "dead_letter", ledger.utcnow(), dict.fromkeys(missing, "event not in the outbox")
            )
        result.dead_letter += len(missing)
    rows = [r for r in rows if r["record_key"] in by_id]
    if not rows:
        return
    with transaction(con):
        ledger.mark_in_flight(con, name, [r["record_key"] for r in rows], run_id, ledger.utcnow())
    audit: list[dict[str, Any]] = []

    def log_attempt(
        c: ledger.Change, attempt: int, code: int | None, status: str, reason: str | None, duration: float
    ) -> None:
        audit.append(
            {
                "run_id": run_id,
                "destination": name,
                "channel": "webhook",
                "record_key": c.record_key,
                "idempotency_key": c.idempotency_key,
                "operation": "upsert",
                "attempt": attempt,
                "response_code": code,
                "status": status,
                "reason": reason,
                "attempted_at": ledger.utcnow(),
                "duration_ms": duration,
            }
        )

    outcomes: dict[str, Any] = {}
    for row in rows:
        key = row["record_key"]
        change = ledger.Change(
            key,
            row["customer_id"],
            "upsert",
            {},
            row["payload_hash"],
            row["idempotency_key"],
            row["change_seq"],
            row["attempts"],
        )
        body = envelope(sub["subscription_id"], by_id[key], row["idempotency_key"])
        outcomes[key] = deliver_with_retries(
            change,
            functools.partial(_post, session, sub["url"], sub["secret"], body, timeout),
            retry,
            limiter,
            log_attempt,
            sleep,
        )
    extra = {k: o.attempts - 1 for k, o in outcomes.items()}  # mark_in_flight counted one attempt each
    by_status: dict[str, list[str]] = {}
    for key, outcome in outcomes.items():
        by_status.setdefault(outcome.status, []).append(key)
    now = ledger.utcnow()
    with transaction(con):
        acked = by_status.pop("acknowledged", [])
        ledger.acknowledge(con, name, acked, now, {k: extra[k] for k in acked})
        for status, keys in by_status.items():
            ledger.set_status(
                con, name, keys, status, now, {k: outcomes[k].error for k in keys}, {k: extra[k] for k in keys}
            )
        ledger.record_attempts(con, audit)
    result.sent += len(outcomes)
    result.attempts += sum(o.attempts for o in outcomes.values())
    result.acknowledged += len(acked)
    result.dead_letter += len(by_status.get("dead_letter", []))
    result.failed += len(by_status.get("failed", []))


def _mirror(con: duckdb.DuckDBPyConnection, db: st.Store, subscription_id: str, name: str) -> None:
    """Copy this subscription's ledger state into the store, where the API reads it (never DuckDB from a request)."""
    rows = con.execute(
        "select record_key, status, attempts, last_error, updated_at from ops.activation_ledger where destination = ?",
        [name],
    ).fetchall()
    d = st.deliveries
    with db.write() as conn:
        conn.execute(d.delete().where(d.c.subscription_id == subscription_id))
        if rows:
            conn.execute(
                d.insert(),
                [
                    {
                        "subscription_id": subscription_id,
                        "event_id": k,
                        "status": s,
                        "attempts": a,
                        "last_error": e,
                        "updated_at": u,
                    }
                    for k, s, a, e, u in rows
                ],
            )
