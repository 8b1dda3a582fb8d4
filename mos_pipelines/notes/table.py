"""Notes to a long table of attributes: one row per fact read from a note, with its evidence.

``attribute_rows(notes)`` takes the staged notes (``note_id``, ``subject``, ``author``, ``note_text``,
``created_at``) and returns one row per extracted attribute: the value as text (and as a number or a date range
where it is one), whether the note negates it, the character span and its text, the confidence, and the extractor,
its version and the prompt version (None for the rules). A note without text or without a timestamp yields no
rows; ``skipped`` says how many and why, so a caller can show it. Plain Python: the dbt model
``int_notes__attributes`` calls it.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mos_pipelines.notes.extract import Attribute, extract

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
)
Extractor = Callable[[str, datetime.datetime], list[Attribute]]


@dataclass
class AttributeRows:
    frame: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> notes


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


def _row(note: Mapping[str, Any], created: datetime.datetime, text: str, a: Attribute) -> dict[str, Any]:
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
    }


def attribute_rows(notes: Iterable[Mapping[str, Any]], extractor: Extractor = extract) -> AttributeRows:
    """One row per attribute of every note (see the module docstring); notes that cannot be read are counted."""
    rows: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    for note in notes:
        text = note.get("note_text")
        created = _timestamp(note.get("created_at"))
        if not isinstance(text, str) or not text.strip():
            skipped["no text"] = skipped.get("no text", 0) + 1
            continue
        if created is None:
            skipped["no created_at"] = skipped.get("no created_at", 0) + 1
            continue
        rows.extend(_row(note, created, text, a) for a in extractor(text, created))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["note_created_at"] = pd.to_datetime(frame["note_created_at"]).astype("datetime64[us]")
    for column in ("value_start_date", "value_end_date"):
        frame[column] = pd.to_datetime(frame[column]).dt.date
    frame["value_number"] = frame["value_number"].astype("float64")
    frame["is_negated"] = frame["is_negated"].astype("bool")
    for column in ("span_start", "span_end"):
        frame[column] = frame[column].astype("int64")
    frame["confidence"] = frame["confidence"].astype("float64")
    return AttributeRows(frame, skipped)


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
