"""Webhook / CRM: one JSON POST per change with an ``Idempotency-Key`` header.

The body is ``{"destination", "operation" (upsert | remove), "record_key", "idempotency_key", "data"}``
where ``data`` is the sync-model row (timestamps as ISO 8601). The receiver is expected to honour the
key (the same key twice is one change): that is what makes a change left in flight by a crash safe to
send again, so ``lookup`` answers "not delivered" and the change is resent with its key. Retries,
backoff and Retry-After: ``channels.deliver_with_retries``.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import math
from typing import Any

import duckdb
import requests

from mos_pipelines.activation.channels import (
    AttemptLog,
    AttemptOutcome,
    ChannelContext,
    DeliveryError,
    SendResult,
    deliver_with_retries,
    require_columns,
)
from mos_pipelines.activation.hashing import recipient_hash
from mos_pipelines.activation.ledger import Change, Prepared, payload_hash
from mos_pipelines.activation.retry import retry_after_seconds

USER_AGENT = "mos-pipelines-activation/0.1"


def json_value(value: Any) -> Any:
    """A warehouse value as JSON: timestamps ISO 8601, decimals as floats, NaN as null."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def post(
    session: requests.Session, url: str, body: dict[str, Any], headers: dict[str, str], timeout: float
) -> AttemptOutcome:
    """One POST: ok on 2xx; the response code, a short error and Retry-After otherwise."""
    return outcome_of(session.post(url, json=body, headers=headers, timeout=timeout))


def outcome_of(response: requests.Response) -> AttemptOutcome:
    """What an HTTP answer means for a delivery: ok on 2xx; else its code, a short error and its Retry-After."""
    if 200 <= response.status_code < 300:
        return AttemptOutcome(True, response.status_code)
    text = response.text[:200].replace("\n", " ")
    return AttemptOutcome(
        False,
        response.status_code,
        f"HTTP {response.status_code}: {text}",
        retry_after_seconds(response.headers.get("Retry-After")),
    )


def required_url(destination: str, url: str | None) -> str:
    if url is None:  # deliver() makes a destination without a URL a dry run: nothing is sent
        raise DeliveryError(f"destination {destination}: no URL configured, nothing can be sent")
    return url


class WebhookChannel:
    kind = "webhook"
    supports_remove = True
    can_reconcile = True  # by idempotency key: the receiver deduplicates a resent change

    def __init__(self, context: ChannelContext) -> None:
        self.context = context
        self.url = context.destination.resolved_url()
        self.batch_size = context.destination.batch_size or 20
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT})

    def prepare(self, rows: list[dict[str, Any]], con: duckdb.DuckDBPyConnection, now: Any) -> list[Prepared]:
        key = self.context.destination.record_key
        require_columns(self.context.name, self.context.destination, rows, (key,))
        prepared = []
        for row in rows:
            data = {k: json_value(v) for k, v in row.items()}
            recipient = data.get("email_address") or data.get("customer_id")
            prepared.append(
                Prepared(
                    str(row[key]),
                    row.get("customer_id"),
                    data,
                    payload_hash(data),
                    recipient_hash("email" if data.get("email_address") else "customer", recipient),
                )
            )
        return prepared

    def body(self, change: Change) -> dict[str, Any]:
        return {
            "destination": self.context.name,
            "operation": change.operation,
            "record_key": change.record_key,
            "idempotency_key": change.idempotency_key,
            "data": change.payload if change.operation == "upsert" else None,
        }

    def batch_ref(self, changes: list[Change]) -> str | None:
        return None

    def send(self, changes: list[Change], log: AttemptLog) -> dict[str, SendResult]:
        url = required_url(self.context.name, self.url)
        results = {}
        timeout = self.context.destination.timeout_seconds
        for change in changes:
            body = self.body(change)
            headers = {"Idempotency-Key": change.idempotency_key}
            results[change.record_key] = deliver_with_retries(
                change,
                functools.partial(post, self.session, url, body, headers, timeout),
                self.context.config.retry,
                self.context.limiter,
                log,
                self.context.sleep,
            )
        return results

    def lookup(self, rows: list[dict[str, Any]]) -> dict[str, bool | None]:
        # Resending with the same Idempotency-Key is safe: treat as not delivered, the receiver dedupes.
        return {r["record_key"]: False for r in rows}

    def close(self) -> None:
        self.session.close()
