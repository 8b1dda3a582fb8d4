"""Precision, recall and F1 per attribute of extracted note attributes against the facts the notes state.

Truth rows are plain dicts (one per note: ``note_id`` and the columns below, None where the note states nothing,
several values joined by ";"). A value counts as found when it equals the truth exactly: a budget of 95,000 read
as 90,000 is one false positive and one false negative; a decision timeline must match both ends. Negated
competitors are not evaluated ones: reading one as evaluated is a false positive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mos_pipelines.notes.extract import ATTRIBUTES, Attribute

MULTI = ("product_interest", "competitor")


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def truth_values(row: Mapping[str, Any], name: str) -> set[Any]:
    """The values a truth row holds for attribute ``name`` (empty when the note states none)."""
    if name == "decision_timeline":
        start, end = row.get("timeline_start"), row.get("timeline_end")
        return {(str(start), str(end))} if _present(start) else set()
    value: Any = row.get(name)
    if not _present(value):
        return set()
    if name in MULTI:
        return set(str(value).split(";"))
    if name == "budget_amount":
        return {int(value)}
    return {str(value)}


def predicted_values(attributes: Iterable[Attribute], name: str) -> set[Any]:
    out: set[Any] = set()
    for a in attributes:
        if a.name != name or a.negated:
            continue
        if name == "decision_timeline":
            out.add((a.value["start"], a.value["end"]))
        elif name == "budget_amount":
            out.add(int(a.value))
        else:
            out.add(str(a.value))
    return out


def _present(value: Any) -> bool:
    return value is not None and value == value and value != ""  # None, NaN and "" are absent


def score(truth: Iterable[Mapping[str, Any]], predicted: Mapping[str, list[Attribute]]) -> dict[str, Score]:
    """Per attribute, counts over notes: ``predicted`` maps note_id to that note's extracted attributes."""
    scores = {name: Score() for name in ATTRIBUTES}
    for row in truth:
        attrs = predicted.get(str(row["note_id"]), [])
        for name in ATTRIBUTES:
            t, p = truth_values(row, name), predicted_values(attrs, name)
            s = scores[name]
            s.tp += len(t & p)
            s.fp += len(p - t)
            s.fn += len(t - p)
    return scores
