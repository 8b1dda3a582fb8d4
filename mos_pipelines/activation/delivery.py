"""One delivery: bring a destination to what its sync model says it should hold, sending each change once.

``deliver`` runs these steps on one warehouse connection (the caller holds the single-writer pool):

1. the channel's kill switch: off means nothing is read or sent;
2. reconcile what a crashed run left in flight (``ledger`` docstring), before anything new is sent;
3. read the sync model and let the channel prepare payloads (hashing, copy, approvals);
4. refuse the rows of people whose erasure was requested (``ops.erasure_identifiers``, hashed customer ids);
   check consent again (``marts.dim_customer_consents``, the destination's purpose): a row without granted
   consent now is not sent (an audit row says why) and, if the destination holds it, is removed;
   and the contact policy at send time (``config/policy.yaml`` contact: frequency caps and quiet hours in the
   person's time zone, for channels whose sends are contacts): a row it refuses now is held (audit
   ``held_contact_policy`` with the reasons) and goes out on a later run that the policy allows;
5. diff against the ledger: only added, changed and removed records become changes;
6. dry run: write the changes to ``$MOS_HOME/activation/dry_run/<destination>/<run>.jsonl`` and stop;
7. otherwise send in batches: consent re-checked per batch, changes marked in flight (committed),
   sent, then acknowledged or failed with the ledger and the audit written in one transaction.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from mos_pipelines.activation import ledger
from mos_pipelines.activation.channels import Channel, ChannelContext, DeliveryError, build_channel
from mos_pipelines.activation.content import ensure_approvals
from mos_pipelines.activation.retry import RateLimiter
from mos_pipelines.configuration.activation import ActivationSettings, Destination
from mos_pipelines.crm.erasure import erased_customer_ids
from mos_pipelines.warehouse import table_exists, transaction

CONSENT_TABLE = "marts.dim_customer_consents"
Log = Callable[[str], None]


@dataclass
class DeliveryReport:
    destination: str
    channel: str
    run_id: str
    dry_run: bool = False
    kill_switch: bool = False
    desired: int = 0
    unchanged: int = 0
    changes: int = 0
    upserts: int = 0
    removes: int = 0
    sent: int = 0  # changes that reached the channel in this run
    acknowledged: int = 0
    failed: int = 0
    dead_letter: int = 0
    attempts: int = 0
    blocked_consent: int = 0
    blocked_erased: int = 0  # sync rows of people whose erasure was requested (never sent, no audit row)
    held_contact_policy: int = 0
    held_for_approval: int = 0
    copy_rejected: int = 0
    cancelled: int = 0
    reconciled: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)  # unresolved changes: dead_letter, unknown
    dry_run_file: str | None = None
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _table_exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    return table_exists(con, *relation.split("."))


def read_sync_model(con: duckdb.DuckDBPyConnection, name: str, destination: Destination) -> list[dict[str, Any]]:
    """The rows the destination should hold, ordered by record key."""
    if not _table_exists(con, destination.sync_model):
        raise DeliveryError(
            f"destination {name}: sync model {destination.sync_model} does not exist; build it first (`mos run`)"
        )
    frame = con.execute(f"select * from {destination.sync_model}").df()
    if destination.record_key not in frame.columns:
        raise DeliveryError(
            f"destination {name}: sync model {destination.sync_model} has no record key column "
            f"{destination.record_key!r}"
        )
    duplicated = frame[destination.record_key].duplicated()
    if duplicated.any():
        example = frame.loc[duplicated, destination.record_key].iloc[0]
        raise DeliveryError(
            f"destination {name}: {destination.sync_model}.{destination.record_key} is not unique "
            f"(e.g. {example!r} appears twice)"
        )
    frame = frame.sort_values(destination.record_key)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def consent_statuses(con: duckdb.DuckDBPyConnection, purpose: str, customer_ids: list[str]) -> dict[str, str]:
    """Current consent status (granted / denied / revoked) per customer for ``purpose``; missing: none."""
    if not _table_exists(con, CONSENT_TABLE):
        raise DeliveryError(f"{CONSENT_TABLE} does not exist: consent cannot be checked at send time, nothing is sent")
    rows = con.execute(
        f"select customer_id, status from {CONSENT_TABLE} where purpose = ? and customer_id in (select unnest(?))",
        [purpose, customer_ids],
    ).fetchall()
    return dict(rows)


def _consent_reason(purpose: str, status: str | None, when: str) -> str:
    return f"no granted {purpose} consent {when} (status: {status or 'no consent row'})"


class _Audit:
    """Collects audit rows until they are written with the ledger changes of the same step."""

    def __init__(self, run_id: str, destination: str, channel: str, now: Callable[[], datetime.datetime]) -> None:
        self.rows: list[dict[str, Any]] = []
        self.base = {"run_id": run_id, "destination": destination, "channel": channel}
        self.now = now

    def add(
        self,
        record_key: str,
        status: str,
        reason: str | None = None,
        *,
        recipient_hash: str | None = None,
        idempotency_key: str | None = None,
        operation: str | None = None,
        attempt: int | None = None,
        response_code: int | None = None,
        duration_ms: float | None = None,
    ) -> None:
        self.rows.append(
            {
                **self.base,
                "record_key": record_key,
                "recipient_hash": recipient_hash,
                "idempotency_key": idempotency_key,
                "operation": operation,
                "attempt": attempt,
                "response_code": response_code,
                "status": status,
                "reason": reason,
                "attempted_at": self.now(),
                "duration_ms": duration_ms,
            }
        )

    def flush(self, con: duckdb.DuckDBPyConnection) -> None:
        ledger.record_attempts(con, self.rows)
        self.rows = []


def _reconcile(
    con: duckdb.DuckDBPyConnection,
    name: str,
    channel: Channel,
    audit: _Audit,
    report: DeliveryReport,
    now: datetime.datetime,
) -> None:
    """Resolve changes a crashed run left in flight, by asking the channel whether they arrived."""
    rows = ledger.in_flight(con, name)
    if not rows:
        return
    found = channel.lookup(rows)
    delivered = [r["record_key"] for r in rows if found.get(r["record_key"]) is True]
    missing = [r["record_key"] for r in rows if found.get(r["record_key"]) is False]
    unknown = [r["record_key"] for r in rows if found.get(r["record_key"]) is None]
    outcome = {
        **{k: ("reconciled_delivered", "found at the destination by idempotency key") for k in delivered},
        **{k: ("reconciled_not_delivered", "not at the destination: will be sent with the same key") for k in missing},
        **{k: ("unknown", "in flight when a run stopped; the channel cannot tell whether it arrived") for k in unknown},
    }
    for row in rows:
        status, reason = outcome[row["record_key"]]
        audit.add(
            row["record_key"],
            status,
            reason,
            idempotency_key=row["idempotency_key"],
            operation=row["operation"],
            attempt=row["attempts"],
        )
    with transaction(con):
        ledger.acknowledge(con, name, delivered, now)
        ledger.set_status(
            con, name, missing, "pending", now, {k: "in flight at a crash; not delivered" for k in missing}
        )
        ledger.set_status(
            con,
            name,
            unknown,
            "unknown",
            now,
            {k: "in flight at a crash; delivery unknown (requeue after checking)" for k in unknown},
        )
        audit.flush(con)
    report.reconciled = {"delivered": len(delivered), "not_delivered": len(missing), "unknown": len(unknown)}


def deliver(
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: ActivationSettings,
    mos_home: Path,
    run_id: str,
    *,
    dry_run: bool | None = None,
    renderer: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    log: Log | None = None,
) -> DeliveryReport:
    """Deliver destination ``name`` (see the module docstring); returns what happened."""
    log = log or (lambda message: None)
    destination = config.destination(name)
    report = DeliveryReport(name, destination.channel, run_id)
    if not config.enabled(destination.channel):
        report.kill_switch = True
        report.notes.append(f"kill switch: channel {destination.channel} is disabled in {config.source}")
        log(report.notes[-1])
        return report
    dry_run = config.dry_run if dry_run is None else dry_run
    if destination.channel in ("webhook", "slack") and not destination.resolved_url():
        dry_run = True
        report.notes.append(f"no URL configured (set {destination.url_env or 'url'}): dry run")
    report.dry_run = dry_run
    ledger.ensure_tables(con)
    ensure_approvals(con)
    context = ChannelContext(name, destination, config, mos_home, RateLimiter(destination.rate_limit_per_second), sleep)
    channel = build_channel(context, renderer)
    audit = _Audit(run_id, name, destination.channel, ledger.utcnow)
    try:
        if not dry_run:
            _reconcile(con, name, channel, audit, report, ledger.utcnow())
        _run(con, name, destination, channel, audit, report, mos_home, dry_run, log)
    finally:
        channel.close()
    report.files = [str(p) for p in getattr(channel, "files_written", [])]
    flagged = getattr(channel, "flagged", None)  # email copy only
    if flagged:
        report.notes.extend(f"copy fell back to the template: {f}" for f in flagged)
    no_identifier = getattr(channel, "skipped_no_identifier", 0)  # audiences only
    if no_identifier:
        report.notes.append(f"{no_identifier} row(s) without a valid email or phone were left out")
    return report


def _run(
    con: duckdb.DuckDBPyConnection,
    name: str,
    destination: Destination,
    channel: Channel,
    audit: _Audit,
    report: DeliveryReport,
    mos_home: Path,
    dry_run: bool,
    log: Log,
) -> None:
    now = ledger.utcnow()
    rows = read_sync_model(con, name, destination)
    prepared = {p.record_key: p for p in channel.prepare(rows, con, now)}
    report.desired = len(prepared)
    # Erased people are refused even if a stale sync model still holds them; no audit row (it would name them).
    erased = erased_customer_ids(con, {p.customer_id for p in prepared.values() if p.customer_id})
    for key, item in list(prepared.items()):
        if item.customer_id in erased:
            report.blocked_erased += 1
            del prepared[key]
    purpose = destination.consent_purpose
    if purpose:
        statuses = consent_statuses(con, purpose, sorted({p.customer_id for p in prepared.values() if p.customer_id}))
        for key, item in list(prepared.items()):
            status = statuses.get(item.customer_id) if item.customer_id else None
            if status != "granted":
                audit.add(
                    key,
                    "blocked_consent",
                    _consent_reason(purpose, status, "at send time"),
                    recipient_hash=item.recipient_hash,
                    operation="upsert",
                )
                report.blocked_consent += 1
                del prepared[key]
    frozen = _contact_policy_holds(con, name, destination, prepared, audit, report, mos_home, now, log)
    for key, item in prepared.items():
        if item.hold:
            status, _, reason = item.hold.partition(": ")
            audit.add(key, status, reason, recipient_hash=item.recipient_hash, operation="upsert")
            frozen.add(key)
            if status == "copy_rejected":
                report.copy_rejected += 1
            else:
                report.held_for_approval += 1
    current = ledger.load(con, name)
    diff = ledger.diff(name, prepared, current, frozen)
    report.unchanged, report.waiting, report.cancelled = diff.unchanged, diff.stuck, len(diff.cancelled)
    changes = sorted(diff.changes, key=lambda c: (c.operation != "remove", c.record_key))
    report.changes = len(changes)
    report.upserts = sum(c.operation == "upsert" for c in changes)
    report.removes = len(changes) - report.upserts
    if dry_run:
        report.dry_run_file = str(_write_dry_run(mos_home, name, report.run_id, changes))
        audit.flush(con)  # consent blocks and holds are recorded even in a dry run
        log(f"dry run: {len(changes)} change(s) written to {report.dry_run_file}")
        return
    with transaction(con):
        ledger.write_pending(con, name, changes, report.run_id, now)
        ledger.cancel(con, name, diff.cancelled, now)
        audit.flush(con)
    local = [c for c in changes if c.operation == "remove" and not channel.supports_remove]
    if local:  # nothing to send: an email cannot be unsent, a Slack post stays
        with transaction(con):
            ledger.acknowledge(con, name, [c.record_key for c in local], ledger.utcnow())
        report.acknowledged += len(local)
    to_send = [c for c in changes if not (c.operation == "remove" and not channel.supports_remove)]
    for start in range(0, len(to_send), channel.batch_size):
        _send_batch(con, name, destination, channel, audit, report, to_send[start : start + channel.batch_size], log)


def _contact_policy_holds(
    con: duckdb.DuckDBPyConnection,
    name: str,
    destination: Destination,
    prepared: dict[str, Any],
    audit: _Audit,
    report: DeliveryReport,
    mos_home: Path,
    now: datetime.datetime,
    log: Log,
) -> set[str]:
    """Record keys the contact policy does not let reach their person now (held, not cancelled): only records that
    would be sent (new or changed upserts) are checked."""
    from mos_pipelines.policy import contact
    from mos_pipelines.policy.active import load_active

    settings = load_active(mos_home).settings.contact
    if contact.send_time_rules(settings, destination.channel) is None:
        return set()
    current = ledger.load(con, name)

    def would_send(key: str, item: Any) -> bool:  # as ledger.diff decides: new, changed, or an open change resumed
        row = current.get(key)
        if row is None:
            return True
        if row["status"] in ("in_flight", "unknown", "dead_letter"):
            return False
        holds_it = bool(row["is_present"]) and row["acked_payload_hash"] == item.payload_hash
        return not (row["status"] == "acknowledged" and holds_it)

    candidates = {key: item for key, item in prepared.items() if item.customer_id and would_send(key, item)}
    if not candidates or not _table_exists(con, "marts.dim_customer_features"):
        return set()
    refused = contact.send_time_check(
        con, settings, destination.channel, sorted({i.customer_id for i in candidates.values()}), now
    )
    held = set()
    for key, item in candidates.items():
        reasons = refused.get(item.customer_id)
        if reasons:
            audit.add(
                key, "held_contact_policy", "; ".join(reasons), recipient_hash=item.recipient_hash, operation="upsert"
            )
            held.add(key)
    report.held_contact_policy = len(held)
    if held:
        log(f"{len(held)} record(s) held by the contact policy (caps or quiet hours); a later run sends them")
    return held


def _send_batch(
    con: duckdb.DuckDBPyConnection,
    name: str,
    destination: Destination,
    channel: Channel,
    audit: _Audit,
    report: DeliveryReport,
    batch: list[ledger.Change],
    log: Log,
) -> None:
    purpose = destination.consent_purpose
    if purpose:
        upserts = [c for c in batch if c.operation == "upsert" and c.customer_id]
        statuses = consent_statuses(con, purpose, sorted({c.customer_id for c in upserts if c.customer_id}))

        def status_of(change: ledger.Change) -> str | None:
            return statuses.get(change.customer_id) if change.customer_id else None

        revoked = {c.record_key for c in upserts if status_of(c) != "granted"}
        if revoked:
            for change in batch:
                if change.record_key in revoked:
                    audit.add(
                        change.record_key,
                        "blocked_consent",
                        _consent_reason(purpose, status_of(change), "when its batch was sent"),
                        recipient_hash=change.recipient_hash,
                        idempotency_key=change.idempotency_key,
                        operation="upsert",
                    )
            report.blocked_consent += len(revoked)
            batch = [c for c in batch if c.record_key not in revoked]
    if not batch:
        return
    keys = [c.record_key for c in batch]
    with transaction(con):
        ledger.mark_in_flight(con, name, keys, report.run_id, ledger.utcnow(), channel.batch_ref(batch))
        audit.flush(con)

    def on_attempt(
        change: ledger.Change, attempt: int, code: int | None, status: str, reason: str | None, duration_ms: float
    ) -> None:
        audit.add(
            change.record_key,
            status,
            reason,
            recipient_hash=change.recipient_hash,
            idempotency_key=change.idempotency_key,
            operation=change.operation,
            attempt=attempt,
            response_code=code,
            duration_ms=round(duration_ms, 3),
        )
        report.attempts += 1

    results = channel.send(batch, on_attempt)
    report.sent += len(batch)
    by_status: dict[str, list[str]] = {}
    for key in keys:
        by_status.setdefault(results[key].status, []).append(key)
    extra = {k: results[k].attempts - 1 for k in keys}
    errors = {k: results[k].error for k in keys}
    now = ledger.utcnow()
    with transaction(con):
        ledger.acknowledge(con, name, by_status.get("acknowledged", []), now, extra)
        for status in ("failed", "dead_letter"):
            ledger.set_status(con, name, by_status.get(status, []), status, now, errors, extra)
        audit.flush(con)
    report.acknowledged += len(by_status.get("acknowledged", []))
    report.failed += len(by_status.get("failed", []))
    report.dead_letter += len(by_status.get("dead_letter", []))
    for key in by_status.get("dead_letter", []):
        log(f"dead letter: {key}: {errors[key]}")


def _write_dry_run(mos_home: Path, name: str, run_id: str, changes: list[ledger.Change]) -> Path:
    path = mos_home / "activation" / "dry_run" / name / f"{run_id}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for change in changes:
            handle.write(
                json.dumps(
                    {
                        "operation": change.operation,
                        "record_key": change.record_key,
                        "idempotency_key": change.idempotency_key,
                        "payload": change.payload if change.operation == "upsert" else None,
                    },
                    default=str,
                    sort_keys=True,
                )
                + "\n"
            )
    return path
