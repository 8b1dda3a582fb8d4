"""The LLM path of note extraction, used when ``config/llm.yaml`` points task ``note_extraction`` at a model (the
default, ``mos-offline/notes``, means the offline rules of ``mos_pipelines.notes.extract``).

The model is sent the note, its date, the vocabulary of every attribute, a JSON schema (``NoteAnswer``) and the
rules' reading as an example, through ``LLM.structured`` (so every call is in ``ops.llm_calls`` with tokens, $ cost
and latency). An answer that is not JSON or does not fit the schema is rejected whole and the rules answer. Each fact
of a fitting answer must be grounded in the note: its ``evidence`` is a verbatim quote of the note, and its value
must be readable from that quote (a product or competitor by one of its names, an amount by its number, a currency
by its symbol, code or word, a date by a date expression, and one the rules can read must be the day they read); a
fact that is not is dropped and listed in
``rejected`` with the reason, so an invented value ("Braze" in a note that never names it) never reaches a table.
"""

from __future__ import annotations

import datetime
import importlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mos_pipelines.notes.extract import Attribute, AttributeName

rules = importlib.import_module("mos_pipelines.notes.extract")  # the module (the package exports its function)

TASK = "note_extraction"
PROMPT_ID = "notes.extract"
EXTRACTOR = "llm"

VOCABULARY: dict[str, tuple[str, ...]] = {
    "product_interest": tuple(rules.PRODUCTS),
    "competitor": tuple(rules.COMPETITORS),
    "role": tuple(role for role, _ in rules.ROLES),
    "seniority": tuple(level for level, _ in rules.SENIORITY),
    "pain_point": tuple(rules.PAINS),
    "next_step": tuple(rules.NEXT_STEPS),
    "sentiment": ("positive", "neutral", "negative"),
    "budget_currency": tuple(sorted(set(rules.CURRENCY_WORDS.values()))),
}


class Fact(BaseModel):
    """One fact the model read: the value and the verbatim words of the note it comes from."""

    model_config = ConfigDict(extra="forbid")

    attribute: AttributeName
    value: str = Field(min_length=1, max_length=200)  # a timeline is "YYYY-MM-DD/YYYY-MM-DD", a date "YYYY-MM-DD"
    evidence: str = Field(min_length=1, max_length=500)
    negated: bool = False  # the note takes it back ("no longer looking at Braze")
    confidence: float = Field(0.8, ge=0, le=1)


class NoteAnswer(BaseModel):
    """What the model returns for one note."""

    model_config = ConfigDict(extra="forbid")

    facts: list[Fact] = Field(default_factory=list, max_length=50)


@dataclass
class LLMExtraction:
    """The attributes a note yields on the LLM path, the facts rejected (and why), and who answered."""

    attributes: list[Attribute]
    model: str  # the model whose answer was used, or "rules" (offline, blocked, or no valid answer)
    prompt_version: str | None
    rejected: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    reason: str | None = None  # why the rules answered


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _locate(evidence: str, text: str) -> tuple[int, int] | None:
    """Where the quote is in the note (whitespace and case aside), or None when the note does not say it."""
    words = [re.escape(w) for w in evidence.split()]
    if not words:
        return None
    m = re.search(r"\s+".join(words), text, re.I)
    return (m.start(), m.end()) if m else None


def _names_in(quote: str, aliases: tuple[str, ...], canonical: str) -> bool:
    hits = rules._alias_hits(quote, {canonical: (canonical.lower(), *aliases)}, fuzzy=True, caseless=True)
    return bool(hits)


def _grounded(fact: Fact, quote: str, day: datetime.date) -> tuple[Any, str | None]:
    """The fact's value in the form the tables use, or the reason it is not grounded in ``quote``."""
    name, value = fact.attribute, fact.value.strip()
    vocabulary = VOCABULARY.get(name)
    if vocabulary is not None and value not in vocabulary:
        return None, f"{value!r} is not one of {', '.join(vocabulary)}"
    if name == "product_interest" and not _names_in(quote, rules.PRODUCTS[value], value):
        return None, f"the quote {quote!r} does not name {value}"
    if name == "competitor" and not _names_in(quote, rules.COMPETITORS[value], value):
        return None, f"the quote {quote!r} does not name {value}"
    if name == "budget_amount":
        try:
            amount = int(round(float(value.replace(",", ""))))
        except ValueError:
            return None, f"{value!r} is not an amount"
        if amount not in {a for a, _, _, _ in rules._amounts(quote)}:
            return None, f"the quote {quote!r} states no amount of {amount}"
        return amount, None
    if name == "budget_currency":
        signs = {w for w, code in rules.CURRENCY_WORDS.items() if code == value}
        if not any(
            re.search(rf"(?<!\w){re.escape(s)}(?!\w)", quote, re.I) or (len(s) == 1 and s in quote) for s in signs
        ):
            return None, f"the quote {quote!r} names no {value}"
        return value, None
    if name in ("next_step_date", "decision_timeline"):
        try:
            dates = [datetime.date.fromisoformat(p) for p in value.split("/")]
        except ValueError:
            return None, f"{value!r} is not a date (YYYY-MM-DD) or a range (YYYY-MM-DD/YYYY-MM-DD)"
        if len(dates) != (2 if name == "decision_timeline" else 1) or dates[0] > dates[-1]:
            return None, f"{value!r} is not a {'range' if name == 'decision_timeline' else 'single date'}"
        read = rules._timeline(quote, day) if name == "decision_timeline" else rules._step_date(quote, day)
        if read is None and not re.search(r"\d", quote):
            return None, f"the quote {quote!r} states no date"
        if read is not None:  # a date the rules can read must be that date ("next Tuesday" is one day)
            expected = list(read[0]) if name == "decision_timeline" else [read[0]]
            if dates != expected:
                return None, f"the quote {quote!r} reads {'/'.join(d.isoformat() for d in expected)}, not {value}"
        if name == "decision_timeline":
            return {"start": dates[0].isoformat(), "end": dates[1].isoformat()}, None
        return dates[0].isoformat(), None
    return value, None


def parse_answer(answer: Any, text: str, day: datetime.date) -> tuple[list[Attribute], list[tuple[dict, str]]]:
    """Grounded attributes of a model's answer and the facts dropped with their reason; ``ValueError`` when the
    answer does not fit the schema (pydantic's ValidationError is one)."""
    parsed = NoteAnswer.model_validate(answer)
    kept: list[Attribute] = []
    rejected: list[tuple[dict, str]] = []
    for fact in parsed.facts:
        where = _locate(fact.evidence, text)
        if where is None:
            rejected.append((fact.model_dump(), f"the evidence {fact.evidence!r} is not in the note"))
            continue
        value, problem = _grounded(fact, text[where[0] : where[1]], day)
        if problem:
            rejected.append((fact.model_dump(), problem))
            continue
        kept.append(Attribute(fact.attribute, value, where[0], where[1], fact.confidence, fact.negated))
    return kept, rejected


def _example(attributes: list[Attribute], text: str) -> str:
    facts = []
    for a in attributes:
        value = a.value
        if a.name == "decision_timeline":
            value = f"{a.value['start']}/{a.value['end']}"
        facts.append(
            {
                "attribute": a.name,
                "value": str(value),
                "evidence": text[a.start : a.end] or text[:40],
                "negated": a.negated,
                "confidence": a.confidence,
            }
        )
    return json.dumps({"facts": facts}, sort_keys=True)


def note_facts(text: str, created_at: datetime.date, baseline: list[Attribute]) -> dict[str, Any]:
    """The facts block the prompt is sent: the note, its day, the vocabulary, the schema, the rules' reading."""
    return {
        "note": text,
        "note_date": created_at.isoformat(),
        "vocabulary": {k: list(v) for k, v in VOCABULARY.items()},
        "schema": NoteAnswer.model_json_schema(),
        "example": _example(baseline, text),
    }


def extract_with_llm(text: str, created_at: datetime.datetime | datetime.date, llm: Any) -> LLMExtraction:
    """A note's attributes from the model of task ``note_extraction`` (see the module); the rules' when that model is
    the offline one, when the prompt is blocked, or when no model gives an answer that fits."""
    day = created_at.date() if isinstance(created_at, datetime.datetime) else created_at
    baseline = rules.extract(text, created_at)
    collected: dict[str, Any] = {}

    def parse(answer: Any) -> list[Attribute]:
        kept, rejected = parse_answer(answer, text, day)
        collected["rejected"] = rejected
        return kept

    result = llm.structured(TASK, PROMPT_ID, note_facts(text, day, baseline), parse, context=text[:60])
    if result.value is None:
        return LLMExtraction(baseline, "rules", None, reason=result.reason)
    version = result.calls[-1].prompt_version if result.calls else None
    attributes = [
        Attribute(a.name, a.value, a.start, a.end, a.confidence, a.negated, EXTRACTOR, result.model, version)
        for a in result.value
    ]
    return LLMExtraction(attributes, result.model, version, collected.get("rejected", []))
