"""Grounding: every number a text states must be one of the facts it was written from.

A number in the text matches a fact when the fact, shown the way the text shows it, rounds to it:
``1,234`` / ``1234`` / ``1.2k`` / ``$1.2M`` / ``12 %`` (a share of 0.12 or 0.1234) / ``2.0×`` / ``-3.5``.
Signs are ignored (a drop of 35 % is written ``-0.35`` in the facts). Fact strings that contain digits
but are not numbers (campaign ids, dates) are masked in the text first: they may be quoted as they are,
and lend no number to anything else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_NUMBER = re.compile(
    r"""
    (?<![\w.])                                   # not the tail of a word or of another number (v2, q3)
    (?P<currency>[$€£])?\s?
    (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
    (?:\s?(?P<suffix>%|percent\b|pp\b|k\b|K\b|M\b|bn\b|B\b|thousand\b|million\b|billion\b|×|x\b))?
    """,
    re.VERBOSE,
)
_RANGE = re.compile(r"\s*(?:–|—|-|to)\s*-?\s*")
_SCALE = {"k": 1e3, "K": 1e3, "thousand": 1e3, "M": 1e6, "million": 1e6, "bn": 1e9, "B": 1e9, "billion": 1e9}
_PERCENT = {"%", "percent", "pp"}


@dataclass(frozen=True)
class StatedNumber:
    """A number as the text states it."""

    text: str
    value: float  # without its scale suffix
    decimals: int
    scale: float
    percent: bool


@dataclass
class GroundingResult:
    grounded: bool
    numbers: list[str] = field(default_factory=list)
    ungrounded: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str | None:
        if self.grounded:
            return None
        return "numbers not in the facts: " + ", ".join(self.ungrounded)


def fact_values(facts: Any) -> tuple[list[float], list[str]]:
    """Every number in the facts (recursively, numeric strings included), and every other string with a digit."""
    numbers: list[float] = []
    tokens: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, (int, float)):
            if math.isfinite(float(value)):
                numbers.append(float(value))
        elif isinstance(value, str):
            try:
                numbers.append(float(value.replace(",", "")))
            except ValueError:
                if any(ch.isdigit() for ch in value):
                    tokens.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple, set)):
            for item in value:
                walk(item)
        elif hasattr(value, "item"):  # numpy scalars
            walk(value.item())

    walk(facts)
    return numbers, tokens


def stated_numbers(text: str, masked: Iterable[str] = ()) -> list[StatedNumber]:
    """The numbers a text states, after masking the given literal strings."""
    for token in sorted(set(masked), key=len, reverse=True):
        if token:
            text = re.sub(re.escape(token), " ", text, flags=re.IGNORECASE)
    found: list[StatedNumber] = []
    matches_ = list(_NUMBER.finditer(text))
    for i, match in enumerate(matches_):
        raw = match.group("num")
        suffix = match.group("suffix") or ""
        digits = raw.replace(",", "")
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        if not suffix and i + 1 < len(matches_) and _RANGE.fullmatch(text[match.end() : matches_[i + 1].start()]):
            suffix = matches_[i + 1].group("suffix") or ""  # "126–212 %": both ends share the unit
        found.append(
            StatedNumber(
                text=match.group(0).strip(),
                value=float(digits),
                decimals=decimals,
                scale=_SCALE.get(suffix, 1.0),
                percent=suffix in _PERCENT,
            )
        )
    return found


def matches(number: StatedNumber, fact: float) -> bool:
    """Whether a fact, rounded the way the text shows it, gives the stated number."""
    tolerance = 0.5 * 10.0 ** (-number.decimals) * (1 + 1e-9) + 1e-12
    candidates = [abs(fact) / number.scale]
    if number.percent:
        candidates.append(abs(fact) * 100.0)
    return any(abs(c - number.value) <= tolerance for c in candidates)


def check_grounding(text: str, facts: Any) -> GroundingResult:
    """Reject text that states a number no fact gives (allowing rounding and formatting)."""
    values, tokens = fact_values(facts)
    stated = stated_numbers(text, tokens)
    ungrounded = [n.text for n in stated if not any(matches(n, v) for v in values)]
    return GroundingResult(grounded=not ungrounded, numbers=[n.text for n in stated], ungrounded=ungrounded)
