"""Notes to a long table of attributes: one row per fact read from a note, with its evidence.

``attribute_rows(notes)`` takes the staged notes (``note_id``, ``subject``, ``author``, ``note_text``,
``created_at``) and returns one row per extracted attribute: the value as text (and as a number or a date range
where it is one), whether the note negates it, the character span and its text, the confidence, and the extractor,
its version and the prompt version (None for the rules). A note without text or without a timestamp yields no
rows; ``skipped`` says how many and why, so a caller can show it. Plain Python: the dbt model
``int_notes__attributes`` calls it.

Each row carries ``note_key``, a digest of everything its note's rows depend on (the note's id, subject, author,
timestamp and text, and the extractor's identity). Given the previous build's rows (``previous``), a note whose key
is there takes its rows from them instead of being read again: a day's build reads the day's notes, not the year's
(issue 20), and an LLM extractor is not asked twice about the same note.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mos_pipelines.gcpause import with_collector_paused
from mos_pipelines.notes.extract import VERSION, Attribute, extract
from mos_pipelines.transform.previous import previous_table

COLUMNS = (
    "note_id",
    "subject",
    "author",
    "note_created_at",
    "attribute",
    "value",
    "value_number",
    "value_start_date",
    "value_end_date",
    "is_negated",
    "span_start",
    "span_end",
    "evidence",
    "confidence",
    "extractor",
    "extractor_version",
    "prompt_version",
    "note_key",
)
Extractor = Callable[[str, datetime.datetime], list[Attribute]]


@dataclass
class AttributeRows:
    frame: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> notes
    reused: int = 0  # notes whose rows came from the previous build (same key)
    read: int = 0  # notes the extractor read


def note_key(note: Mapping[str, Any], created: datetime.datetime, text: str, extractor_id: str) -> str:
    """The digest of what a note's rows depend on: its id, subject, author, timestamp, text, and the extractor."""
    parts = [str(note["note_id"]), note.get("subject"), note.get("author"), created.isoformat(), text, extractor_id]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _timestamp(value: Any) -> datetime.datetime | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if pd.isna(stamp):
        return None
    return stamp.to_pydatetime()


def _row(note: Mapping[str, Any], created: datetime.datetime, text: str, a: Attribute, key: str) -> dict[str, Any]:
    value: Any = a.value
    number = start = end = None
    if a.name == "decision_timeline":
        start, end = value["start"], value["end"]
        value = f"{start}/{end}"
    elif a.name == "budget_amount":
        number = float(value)
        value = str(int(value))
    elif a.name == "next_step_date":
        start = end = value
    return {
        "note_id": str(note["note_id"]),
        "subject": None if note.get("subject") is None else str(note["subject"]),
        "author": note.get("author"),
        "note_created_at": created.replace(tzinfo=None) if created.tzinfo else created,
        "attribute": a.name,
        "value": str(value),
        "value_number": number,
        "value_start_date": start,
        "value_end_date": end,
        "is_negated": bool(a.negated),
        "span_start": int(a.start),
        "span_end": int(a.end),
        "evidence": text[a.start : a.end],
        "confidence": float(a.confidence),
        "extractor": a.extractor,
        "extractor_version": a.version,
        "prompt_version": a.prompt_version,
        "note_key": key,
    }


@with_collector_paused
def attribute_rows(
    notes: Iterable[Mapping[str, Any]],
    extractor: Extractor = extract,
    previous: pd.DataFrame | None = None,
    extractor_id: str | None = None,
) -> AttributeRows:
    """One row per attribute of every note (see the module docstring); notes that cannot be read are counted.
    With ``previous`` (rows an earlier call returned, ``note_key`` included), a note whose key is among them keeps
    those rows; ``extractor_id`` names the extractor in the key (default: the rules and their version)."""
    extractor_id = extractor_id or f"rules {VERSION}"
    rows: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    usable = previous is not None and len(previous) and "note_key" in previous.columns
    known = set(previous["note_key"]) if previous is not None and usable else set()
    reused: list[tuple[int, str]] = []  # (the note's place, its key) of every note whose rows are reused
    read = 0
    for place, note in enumerate(notes):
        text = note.get("note_text")
        created = _timestamp(note.get("created_at"))
        if not isinstance(text, str) or not text.strip():
            skipped["no text"] = skipped.get("no text", 0) + 1
            continue
        if created is None:
            skipped["no created_at"] = skipped.get("no created_at", 0) + 1
            continue
        key = note_key(note, created, text, extractor_id)
        if key in known:
            reused.append((place, key))
            continue
        rows.extend({**_row(note, created, text, a, key), "_place": place} for a in extractor(text, created))
        read += 1
    frame = _typed(pd.DataFrame(rows, columns=[*COLUMNS, "_place"]))
    if reused and previous is not None:
        # a note's rows as the last build wrote them, once per note with that key (a note landed twice has its rows
        # twice in that table), in the notes' order: columns at a time, not a dict per row
        one_copy = previous[list(COLUMNS)].drop_duplicates(
            ["note_key", "attribute", "value", "span_start", "span_end", "is_negated"]
        )
        kept = _typed(pd.DataFrame(reused, columns=["_place", "note_key"]).merge(one_copy, on="note_key"))
        parts = [part[[*COLUMNS, "_place"]] for part in (frame, kept) if len(part)]
        frame = pd.concat(parts, ignore_index=True).sort_values("_place", kind="stable", ignore_index=True)
    frame = frame[list(COLUMNS)]
    return AttributeRows(frame, skipped, len(reused), read)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns' types of the table, whatever the rows (none, or a column all null)."""
    frame = frame.copy()
    frame["note_created_at"] = pd.to_datetime(frame["note_created_at"]).astype("datetime64[us]")
    for column in ("value_start_date", "value_end_date"):
        frame[column] = pd.to_datetime(frame[column]).dt.date
    frame["value_number"] = frame["value_number"].astype("float64")
    frame["is_negated"] = frame["is_negated"].astype("bool")
    for column in ("span_start", "span_end"):
        frame[column] = frame[column].astype("int64")
    frame["confidence"] = frame["confidence"].astype("float64")
    return frame


def configured_extractor(con: Any = None, config: Any = None) -> tuple[Extractor, str]:
    """The extractor the configuration asks for and its name: the offline rules when task ``note_extraction`` uses
    the offline model (the default), else the LLM path (``llm_path.extract_with_llm``), its calls ledgered in
    ``ops.llm_calls`` of ``con`` (a rejected fact is dropped there, the rules answer a rejected answer)."""
    from mos_pipelines.configuration import load_llm
    from mos_pipelines.llm.offline import is_offline
    from mos_pipelines.notes.llm_path import TASK, extract_with_llm

    settings = config or load_llm()
    if all(is_offline(m) for m in settings.for_task(TASK).chain):
        return extract, "rules"
    from mos_pipelines.llm import LLM, Ledger

    llm = LLM(settings, Ledger(con))

    def through_llm(text: str, created: datetime.datetime) -> list[Attribute]:
        return extract_with_llm(text, created, llm).attributes

    return through_llm, "llm"


def extractor_identity(config: Any = None) -> str:
    """What the rows of a note depend on besides the note: the rules and their version, or the LLM task's model
    chain and prompt version (its answers are checked against the rules, so their version counts too)."""
    from mos_pipelines.configuration import load_llm
    from mos_pipelines.llm.offline import is_offline
    from mos_pipelines.llm.prompts import get_prompt
    from mos_pipelines.notes.llm_path import PROMPT_ID, TASK

    chain = (config or load_llm()).for_task(TASK).chain
    if all(is_offline(m) for m in chain):
        return f"rules {VERSION}"
    return f"llm {' '.join(chain)} prompt {get_prompt(PROMPT_ID).version} rules {VERSION}"


def previous_rows(con: Any, schema: str, table: str) -> pd.DataFrame | None:
    """The rows the last build wrote (``schema.table``), or None when there are none to reuse (no table yet, or one
    written before rows carried their note's key)."""
    return previous_table(con, schema, table, "note_key")
