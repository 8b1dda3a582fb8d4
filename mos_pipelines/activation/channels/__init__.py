"""Channels: how a change reaches a destination, and how to tell afterwards whether it did.

A channel turns sync-model rows into payloads (``prepare``), sends changes (``send``, reporting every
attempt through a callback) and, after a crash, looks up whether changes left in flight arrived
(``lookup``: True delivered, False not delivered, None cannot tell). ``can_reconcile`` says whether
``lookup`` can ever answer; the engine sends one change per batch when it cannot, so a crash leaves
at most one change of unknown fate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb

from mos_pipelines.activation.ledger import Change, Prepared
from mos_pipelines.activation.retry import RateLimiter, backoff_seconds, is_retryable
from mos_pipelines.configuration.activation import ActivationSettings, Destination, RetrySettings


class DeliveryError(RuntimeError):
    """A destination cannot be delivered at all (missing sync model or column, bad settings)."""


@dataclass
class SendResult:
    """The end of one change in this run."""

    status: str  # acknowledged | failed (retry in a later run) | dead_letter
    response_code: int | None = None
    error: str | None = None
    attempts: int = 1  # attempts made in this run


# (change, attempt number counted over runs, response code, status, reason, duration in ms)
AttemptLog = Callable[[Change, int, "int | None", str, "str | None", float], None]


@dataclass
class AttemptOutcome:
    """What one try of a request returned."""

    ok: bool
    response_code: int | None
    error: str | None = None
    retry_after: float | None = None  # seconds the destination asked us to wait
    permanent: bool | None = None  # None: decided from the response code


class Channel(Protocol):
    kind: str
    supports_remove: bool  # False: a removal is acknowledged without sending (an email cannot be unsent)
    can_reconcile: bool
    batch_size: int

    def prepare(self, rows: list[dict[str, Any]], con: duckdb.DuckDBPyConnection, now: Any) -> list[Prepared]: ...

    def batch_ref(self, changes: list[Change]) -> str | None: ...

    def send(self, changes: list[Change], log: AttemptLog) -> dict[str, SendResult]: ...

    def lookup(self, rows: list[dict[str, Any]]) -> dict[str, bool | None]: ...

    def close(self) -> None: ...


@dataclass
class ChannelContext:
    """What every channel may need besides its destination's settings."""

    name: str
    destination: Destination
    config: ActivationSettings
    mos_home: Path
    limiter: RateLimiter
    sleep: Callable[[float], None] = time.sleep


def require_columns(name: str, destination: Destination, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """Fail with the destination, the sync model and the missing column(s) named."""
    if not rows:
        return
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise DeliveryError(
            f"destination {name}: sync model {destination.sync_model} has no column(s) "
            f"{', '.join(missing)} (the {destination.channel} channel needs {', '.join(columns)})"
        )


def deliver_with_retries(
    change: Change,
    attempt_once: Callable[[], AttemptOutcome],
    retry: RetrySettings,
    limiter: RateLimiter,
    log: AttemptLog,
    sleep: Callable[[float], None],
) -> SendResult:
    """Try ``attempt_once`` until it succeeds, fails for good, or the attempts run out.

    Retryable: no answer, 408, 429 and 5xx. The wait after a failed attempt is the exponential backoff
    with jitter, and at least what Retry-After asked for; a Retry-After beyond
    ``max_retry_after_seconds`` ends the run's tries (status failed: the next run resumes). Attempts
    are counted across runs (the ledger's ``attempts`` of this change), so N is N in total.
    """
    made = 0
    while True:
        limiter.wait()
        started = time.perf_counter()
        try:
            outcome = attempt_once()
        except Exception as exc:  # the transport failed: no answer
            outcome = AttemptOutcome(False, None, f"{type(exc).__name__}: {exc}")
        duration = (time.perf_counter() - started) * 1000
        made += 1
        attempt = change.attempts + made  # change.attempts: attempts of earlier runs
        if outcome.ok:
            log(change, attempt, outcome.response_code, "acknowledged", None, duration)
            return SendResult("acknowledged", outcome.response_code, None, made)
        permanent = outcome.permanent if outcome.permanent is not None else not is_retryable(outcome.response_code)
        if permanent:
            log(change, attempt, outcome.response_code, "dead_letter", f"permanent: {outcome.error}", duration)
            return SendResult("dead_letter", outcome.response_code, outcome.error, made)
        if attempt >= retry.max_attempts:
            log(
                change,
                attempt,
                outcome.response_code,
                "dead_letter",
                f"{attempt} attempts used up: {outcome.error}",
                duration,
            )
            return SendResult("dead_letter", outcome.response_code, f"after {attempt} attempts: {outcome.error}", made)
        wait = backoff_seconds(retry, attempt, change.idempotency_key)
        if outcome.retry_after is not None:
            if outcome.retry_after > retry.max_retry_after_seconds:
                reason = (
                    f"Retry-After {outcome.retry_after:g} s is beyond max_retry_after_seconds "
                    f"{retry.max_retry_after_seconds:g}: the next run resumes"
                )
                log(change, attempt, outcome.response_code, "failed", reason, duration)
                return SendResult("failed", outcome.response_code, reason, made)
            wait = max(wait, outcome.retry_after)
        log(change, attempt, outcome.response_code, "retry", f"{outcome.error}; next try in {wait:.3f} s", duration)
        sleep(wait)


def build_channel(context: ChannelContext, renderer: Any = None) -> Channel:
    """The channel object of a destination."""
    kind = context.destination.channel
    if kind == "email":
        from mos_pipelines.activation.channels.email import EmailChannel

        return EmailChannel(context, renderer)
    if kind == "webhook":
        from mos_pipelines.activation.channels.webhook import WebhookChannel

        return WebhookChannel(context)
    if kind == "slack":
        from mos_pipelines.activation.channels.slack import SlackChannel

        return SlackChannel(context)
    if kind in ("google_customer_match", "meta_custom_audience"):
        from mos_pipelines.activation.channels.audiences import AudienceChannel

        return AudienceChannel(context)
    raise DeliveryError(f"destination {context.name}: unknown channel {kind!r}")
