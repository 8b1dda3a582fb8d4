"""Dirty data on purpose: records that break the landing contract, duplicates and late events.

Every dirty record is an extra, corrupted copy of a real record, so the truth is exactly the set of
valid records. Malformed records are rejected by the contract in ``ingestion/contracts.py``:
unparseable JSON or not an object, a CSV row with the wrong number of fields, a required field
missing, a typed field that does not parse, a value outside ``allowed``, or an event without both
``anonymousId`` and ``userId``. Their invalid values are chosen so that no parser accepts them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mos_pipelines.ingestion.contracts import CRM_SYSTEMS
from mos_pipelines.simulation.scenario import DIRTY_KEYS, DirtyRates
from mos_pipelines.simulation.streams import Stream, random_uuids, rng
from mos_pipelines.simulation.writers import DUPLICATE, VALID, LandingFile

MAX_LATE_DAYS = 3


def dirty_rng(seed: int, source: str, day: int, part: int = 0) -> np.random.Generator:
    """The generator of one source's dirty rows on one day (``part`` tells subfolders apart)."""
    return rng(seed, Stream.DIRTY + 10 * list(DIRTY_KEYS).index(source) + part, day)


def _european_number(value: str) -> str:
    return value.replace(".", ",") + "€"


# (column, corruption) pairs a malformed CSV row may get, per source.
CSV_BAD_VALUES: dict[str, tuple[tuple[str, Callable[[str], str]], ...]] = {
    "orders": (("amount", _european_number), ("created_at", lambda _: "yesterday")),
    "email": (("occurred_at", lambda _: "yesterday"), ("event", lambda _: "opend")),
    "consent": (("status", lambda _: "GRANTED"), ("purpose", lambda _: "marketing"), ("occurred_at", lambda _: "n/a")),
    "ad_spend": (("spend", lambda _: "1.234,56"), ("clicks", lambda _: "n/a"), ("date", lambda _: "yesterday")),
}
CSV_ID_COLUMN = {"orders": "order_id", "email": "message_id", "consent": "subject", "ad_spend": "campaign_id"}
CSV_DUPLICATE_SOURCES = ("orders", "email")  # sources whose rows have a key that dbt deduplicates on


@dataclass
class _Insert:
    position: int  # index in the original records before which the new record goes
    record: object
    kind: str


def _insert_all(file: LandingFile, inserts: list[_Insert]) -> None:
    inserts.sort(key=lambda x: x.position)  # stable: inserts at one position keep their order
    records, kinds = [], []
    j = 0
    for i in range(len(file.records) + 1):
        while j < len(inserts) and inserts[j].position == i:
            records.append(inserts[j].record)
            kinds.append(inserts[j].kind)
            j += 1
        if i < len(file.records):
            records.append(file.records[i])
            kinds.append(file.kinds[i])
    file.records, file.kinds = records, kinds


def inject_csv(
    file: LandingFile, rates: DirtyRates, generator: np.random.Generator, crm_system: str | None = None
) -> Counter[str]:
    """Add malformed rows, rows without their id and (orders, email) exact duplicates to a CSV file."""
    assert file.header is not None
    header = list(file.header)
    if crm_system is not None:
        system = CRM_SYSTEMS[crm_system]
        id_column = system.id_column
        bad_values: tuple[tuple[str, Callable[[str], str]], ...] = (
            (system.timestamp_columns[0], lambda _: "yesterday"),
        )
    else:
        id_column = CSV_ID_COLUMN[file.source]
        bad_values = CSV_BAD_VALUES[file.source]
    n = len(file.records)
    counts: Counter[str] = Counter()
    inserts: list[_Insert] = []
    if n == 0:
        return counts
    for _ in range(generator.binomial(n, rates.malformed_rate)):
        row = list(file.records[generator.integers(n)])
        if generator.random() < 0.5:
            kind = "wrong_field_count"
            row = row + ["unexpected"] if generator.random() < 0.5 else row[:-1]
        else:
            kind = "bad_value"
            column, corrupt = bad_values[generator.integers(len(bad_values))]
            k = header.index(column)
            row[k] = corrupt(row[k])
        inserts.append(_Insert(int(generator.integers(n + 1)), row, kind))
        counts[kind] += 1
    for _ in range(generator.binomial(n, rates.missing_id_rate)):
        row = list(file.records[generator.integers(n)])
        row[header.index(id_column)] = ""
        inserts.append(_Insert(int(generator.integers(n + 1)), row, "missing_id"))
        counts["missing_id"] += 1
    if file.source in CSV_DUPLICATE_SOURCES:
        for _ in range(generator.binomial(n, rates.duplicate_rate)):
            src = int(generator.integers(n))
            inserts.append(_Insert(src + 1, list(file.records[src]), DUPLICATE))
            counts[DUPLICATE] += 1
    _insert_all(file, inserts)
    return counts


def _corrupt_json(line: str, kind: str, fresh_id: str) -> str:
    record = json.loads(line)
    if "messageId" in record:  # a corrupted copy must not collide with its original
        record["messageId"] = fresh_id
    if kind == "bad_timestamp":
        record["timestamp" if "timestamp" in record else "created_at"] = "yesterday"
    elif kind == "bad_type":
        record["type"] = record["type"].capitalize()
    elif kind == "missing_message_id":
        del record["messageId"]
    elif kind == "missing_text":
        del record["text"]
    elif kind == "missing_note_id":
        record["note_id"] = ""
    elif kind == "missing_ids":
        record["anonymousId"] = None
        record["userId"] = None
    elif kind == "not_an_object":
        return json.dumps([record.get("type") or record.get("note_id"), fresh_id])
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    if kind == "bad_json":
        return text[: max(1, len(text) // 2)]
    return text


JSON_MALFORMED_KINDS = {
    "events": ("bad_json", "not_an_object", "bad_timestamp", "bad_type", "missing_message_id"),
    "crm_notes": ("bad_json", "bad_timestamp", "missing_text"),
}
JSON_MISSING_ID_KIND = {"events": "missing_ids", "crm_notes": "missing_note_id"}


def inject_jsonl(file: LandingFile, rates: DirtyRates, generator: np.random.Generator) -> Counter[str]:
    """Add malformed lines and lines without ids to a JSONL file (events or notes)."""
    n = len(file.records)
    counts: Counter[str] = Counter()
    if n == 0:
        return counts
    kinds = JSON_MALFORMED_KINDS[file.source]
    plan = [kinds[generator.integers(len(kinds))] for _ in range(generator.binomial(n, rates.malformed_rate))]
    plan += [JSON_MISSING_ID_KIND[file.source]] * generator.binomial(n, rates.missing_id_rate)
    fresh_ids = random_uuids(generator, len(plan))
    inserts = []
    for kind, fresh_id in zip(plan, fresh_ids):
        line = _corrupt_json(file.records[generator.integers(n)], kind, fresh_id)
        inserts.append(_Insert(int(generator.integers(n + 1)), line, kind))
        counts[kind] += 1
    _insert_all(file, inserts)
    return counts


@dataclass
class EventDelivery:
    """When each of a day's events is delivered: on time, late, and whether it is sent twice."""

    late_days: np.ndarray  # 0 = in the day's own file, k = in the file k days later
    duplicate: np.ndarray  # -1 none, 0 = repeated in the same file, 1 = repeated in the next file


def plan_event_delivery(n: int, rates: DirtyRates, generator: np.random.Generator) -> EventDelivery:
    late = generator.random(n) < rates.late_rate
    late_days = np.where(late, generator.integers(1, MAX_LATE_DAYS + 1, n), 0)
    repeated = ~late & (generator.random(n) < rates.duplicate_rate)
    duplicate = np.where(repeated, generator.integers(0, 2, n), -1)
    return EventDelivery(late_days, duplicate)


def assemble_events_file(
    file: LandingFile, lines: list[str], delivery: EventDelivery, carried: list[tuple[str, str]]
) -> list[str]:
    """Fill the day's events file: on-time events (each same-file duplicate right after its original),
    then what earlier days carried over (late events, next-file duplicates).

    Returns the lines to repeat in the next day's file.
    """
    records, kinds, next_day = [], [], []
    for line, late, dup in zip(lines, delivery.late_days.tolist(), delivery.duplicate.tolist()):
        if late:
            continue
        records.append(line)
        kinds.append(VALID)
        if dup == 0:
            records.append(line)
            kinds.append(DUPLICATE)
        elif dup == 1:
            next_day.append(line)
    for line, kind in carried:
        records.append(line)
        kinds.append(kind)
    file.records, file.kinds = records, kinds
    return next_day
