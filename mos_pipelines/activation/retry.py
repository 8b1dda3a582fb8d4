"""Retry timing and rate limits shared by the channels that send one request per record."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from urllib3.util.retry import Retry

from mos_pipelines.configuration.activation import RetrySettings

RETRYABLE_4XX = {408, 429}  # request timeout, too many requests: every other 4xx is permanent


def is_retryable(status_code: int | None) -> bool:
    """A connection error (None), 408, 429 and 5xx are worth retrying; other answers are final."""
    if status_code is None:
        return True
    return status_code in RETRYABLE_4XX or status_code >= 500


def backoff_seconds(settings: RetrySettings, attempt: int, seed: str) -> float:
    """Wait after failed attempt ``attempt`` (1-based): base * 2^(attempt-1) capped at the maximum,
    with equal jitter (between half and all of it), from a generator seeded by ``seed`` so that a
    rerun waits the same."""
    delay = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (attempt - 1))
    jitter = random.Random(f"{seed}:{attempt}").uniform(0, delay * settings.jitter)
    return delay * (1 - settings.jitter) + jitter


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds from now; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(Retry().parse_retry_after(value)))
    except Exception:  # urllib3 raises InvalidHeader for a malformed value
        return None


class RateLimiter:
    """At most ``per_second`` calls per second for one destination (even spacing; None: no limit)."""

    def __init__(
        self,
        per_second: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = self._clock()
        if now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self.interval
