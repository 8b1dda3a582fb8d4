"""Named random streams: every draw comes from a generator keyed by (seed, stream[, day]).

Keying per-day streams by the day index means day ``d`` draws the same numbers whatever the
horizon, so extending a world by a day leaves the earlier days' files untouched.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """One independent random stream per purpose."""

    ACCOUNTS = 1
    PEOPLE = 2
    DEVICES = 3
    PHONES = 4
    CRM = 5
    CONSENT = 6
    EMAIL_ASSIGNMENT = 7
    CRM_NOISE = 8
    CRM_GENERIC = 9
    CRM_GENERIC_NOISE = 10
    EXPERIMENT_LOG = 11  # randomized logs with per-unit features (experiment_log.py)
    NOTE_SET = 12  # standalone note sets for the extractor benchmark (note_text.py)
    # Per-day streams.
    SESSIONS = 101
    EVENTS = 102
    ORDERS = 103
    EMAIL = 104
    AD_SPEND = 105
    NOTES = 106
    CONSENT_DAY = 107
    EMAIL_TIMES = 108
    RESPOND = 109  # the world's answer to sends decided outside it (respond.py)
    CRM_REEXPORT = 110
    BLUEPRINT = 111  # the world's answer to a simulated blueprint (blueprint_world.py)
    DIRTY = 200  # plus the source's position, see dirty_data.dirty_rng


def rng(seed: int, stream: int, day: int | None = None) -> np.random.Generator:
    """The generator of one stream (population-level when ``day`` is None)."""
    key = [seed, int(stream)] if day is None else [seed, int(stream), 1, day]
    return np.random.default_rng(np.random.SeedSequence(key))


def random_uuids(generator: np.random.Generator, n: int) -> list[str]:
    """``n`` version-4 UUID strings drawn from ``generator`` (deterministic, unlike ``uuid.uuid4``)."""
    words = generator.integers(0, 2**64, size=(n, 2), dtype=np.uint64)
    out = []
    for hi, lo in words.tolist():
        h = f"{hi:016x}{lo:016x}"
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}")
    return out
