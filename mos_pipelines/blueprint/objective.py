"""A marketer's objective in words -> a structured objective: goal metric, segment, horizon, budget, target,
constraints. The offline parser is a small deterministic grammar (docs/DECISIONS.md, "Blueprint"):

    [verb] <goal metric> [in|for <segment values>] [by <n>% | by <n> | to <n>] [$<budget>] [<n> months|weeks|days]
    [without <channel>] [CAC under $<n>]

Verbs, metric words and segment synonyms come from ``config/blueprint.yaml``; segment values and channels from the
warehouse (``Vocabulary``). An objective that could mean two things, or asks for something not supported, raises
``ObjectiveError`` listing what it could mean or what is supported.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mos_pipelines.configuration.blueprint import BlueprintSettings

DAYS_PER_MONTH = 30.4375  # 365.25 / 12: a horizon in months becomes whole days


class ObjectiveError(ValueError):
    """The objective cannot be read as one supported objective; ``alternatives`` lists what it could mean or what
    is supported."""

    def __init__(self, message: str, alternatives: list[str] | None = None) -> None:
        self.alternatives = alternatives or []
        text = message + ("".join(f"\n  - {a}" for a in self.alternatives) if self.alternatives else "")
        super().__init__(text)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentFilter(Model):
    dimension: str
    values: tuple[str, ...] = Field(min_length=1)


class Target(Model):
    kind: Literal["relative", "additional", "absolute"]  # +n %, +n customers, to n customers
    value: float


class Constraints(Model):
    excluded_channels: tuple[str, ...] = ()
    max_cac_usd: float | None = None


class Objective(Model):
    """What the marketer asked for, in the form the goal and the planner read."""

    text: str
    metric: str
    direction: Literal["increase"] = "increase"
    segment: tuple[SegmentFilter, ...] = ()
    horizon_months: float = Field(gt=0)
    horizon_days: int = Field(ge=1)
    budget_usd: float = Field(gt=0)
    target: Target | None = None
    constraints: Constraints = Constraints()

    def normalised(self) -> dict[str, Any]:
        """The objective without its wording: two phrasings of the same ask normalise the same."""
        data = self.model_dump(mode="json", exclude={"text"})
        data["segment"] = sorted(
            ({"dimension": f["dimension"], "values": sorted(f["values"])} for f in data["segment"]),
            key=lambda f: f["dimension"],
        )
        data["constraints"]["excluded_channels"] = sorted(data["constraints"]["excluded_channels"])
        return data

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.normalised(), sort_keys=True).encode()).hexdigest()

    def segment_text(self) -> str:
        return " and ".join(f"{f.dimension} in ({', '.join(f.values)})" for f in self.segment) or "all customers"


@dataclass(frozen=True)
class Vocabulary:
    """What the warehouse has: the values of each segment dimension, and the channels."""

    dimension_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    meaning: Any
    term: str


def _find(term: str, text: str, lowered: str) -> list[tuple[int, int]]:
    """Whole-word occurrences of ``term``; terms of up to 3 characters must match as written (EU, UK, NA), longer
    ones ignore case."""
    short = len(term) <= 3
    haystack, needle = (text, term) if short else (lowered, term.lower())
    pattern = r"(?<![\w-])" + r"\s+".join(re.escape(w) for w in needle.split()) + r"(?![\w-])"
    return [(m.start(), m.end()) for m in re.finditer(pattern, haystack)]


def _longest(spans: list[_Span]) -> list[_Span]:
    """Drop spans inside a longer one (``paying customer base`` beats ``customer base``)."""
    return [
        s
        for s in spans
        if not any((o.start <= s.start and s.end <= o.end) and (o.end - o.start) > (s.end - s.start) for o in spans)
    ]


def _matches(terms: dict[str, list[Any]], text: str, lowered: str) -> list[_Span]:
    spans = [
        _Span(a, b, meaning, term)
        for term, meanings in terms.items()
        for meaning in meanings
        for a, b in _find(term, text, lowered)
    ]
    return _longest(spans)


_NUMBER = r"(\d[\d,]*(?:\.\d+)?)"
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _budget(text: str) -> tuple[float | None, tuple[int, int] | None]:
    lowered = text.lower()
    foreign = re.search(r"(€|£|¥|\b(?:eur|gbp|euros?|pounds?)\b)", lowered)
    pattern = (
        rf"(?:\$\s*|\busd\s*){_NUMBER}\s*(k|thousand|mn|m|million)?\b"
        rf"|{_NUMBER}\s*(k|thousand|mn|m|million)?\s*(?:usd|dollars)\b"
    )
    m = re.search(pattern, lowered)
    if m is None:
        if foreign:
            raise ObjectiveError(
                f"the budget must be in US dollars (the warehouse's cost_usd); got {foreign.group(0)!r} "
                "in the objective",
                ["write it as $100,000 or 100k USD, or pass --budget"],
            )
        return None, None
    amount = m.group(1) or m.group(3)
    scale = m.group(2) or m.group(4)
    return _number(amount) * _SCALE.get(scale or "", 1.0), m.span()


def _horizon(text: str) -> tuple[float | None, tuple[int, int] | None]:
    lowered = text.lower()
    m = re.search(r"\b(\d+(?:\.\d+)?)\s*[- ]?\s*(months?|weeks?|days?|quarters?|years?)\b", lowered)
    if m:
        n, unit = float(m.group(1)), m.group(2).rstrip("s")
        months = {
            "month": n,
            "week": n * 7 / DAYS_PER_MONTH,
            "day": n / DAYS_PER_MONTH,
            "quarter": 3 * n,
            "year": 12 * n,
        }[unit]
        return months, m.span()
    m = re.search(r"\b(?:a|one|this|next|the next)\s+(quarter|year|month)\b", lowered)
    if m:
        return {"quarter": 3.0, "year": 12.0, "month": 1.0}[m.group(1)], m.span()
    return None, None


def _target(text: str, taken: list[tuple[int, int]]) -> Target | None:
    lowered = text.lower()

    def free(span: tuple[int, int]) -> bool:
        return not any(a < span[1] and span[0] < b for a, b in taken)

    for m in re.finditer(r"(?:\bby\s*|\+\s*)?(\d+(?:\.\d+)?)\s*(?:%|\s*percent\b)", lowered):
        if free(m.span()):
            return Target(kind="relative", value=float(m.group(1)))
    for m in re.finditer(rf"\bto\s+{_NUMBER}\b(?!\s*(?:%|percent|k\b|m\b|months?|weeks?|days?|usd|dollars))", lowered):
        if free(m.span()):
            return Target(kind="absolute", value=_number(m.group(1)))
    for m in re.finditer(
        rf"(?:\bby\s+|\+\s*){_NUMBER}\b(?!\s*(?:%|percent|k\b|m\b|months?|weeks?|days?|usd|dollars))", lowered
    ):
        if free(m.span()):
            return Target(kind="additional", value=_number(m.group(1)))
    return None


def _constraints(text: str, channels: tuple[str, ...]) -> tuple[Constraints, list[tuple[int, int]]]:
    """The constraints and where they are in ``text`` (so their amounts are not read as the budget)."""
    lowered = text.lower()
    excluded = []
    spans = []
    for channel in channels:
        words = r"[\s_-]+".join(re.escape(w) for w in re.split(r"[\s_-]+", channel.lower()))
        found = re.search(rf"\b(?:without|excluding|except|no)\s+(?:the\s+)?{words}\b", lowered)
        if found:
            excluded.append(channel)
            spans.append(found.span())
    m = re.search(
        rf"\bcac\s+(?:under|below|of at most|at most|<=?|max(?:imum)?(?: of)?)\s*\$?\s*{_NUMBER}", lowered
    ) or re.search(rf"\b(?:max(?:imum)?|at most)\s+(?:a\s+)?cac\s+(?:of\s+)?\$?\s*{_NUMBER}", lowered)
    if m:
        spans.append(m.span())
    return Constraints(excluded_channels=tuple(sorted(excluded)), max_cac_usd=_number(m.group(1)) if m else None), spans


def supported_metrics(settings: BlueprintSettings) -> list[str]:
    return [f"{name}: {m.description} (say e.g. {m.phrases[0]!r})" for name, m in settings.metrics.items()]


def parse_objective(
    text: str,
    settings: BlueprintSettings,
    vocabulary: Vocabulary,
    budget_usd: float | None = None,
    months: float | None = None,
) -> Objective:
    """The structured form of ``text`` (budget and horizon may come from options instead of the words)."""
    text = " ".join(text.split())
    if not text:
        raise ObjectiveError("the objective is empty", supported_metrics(settings))
    lowered = text.lower()
    example = 'e.g. "Expand paying customers in the EU by 2% with $100,000 in 3 months"'

    # the direction
    verbs_seen = {
        kind: sorted({t for t in verbs for _ in _find(t, text, lowered)})
        for kind, verbs in settings.intents.unsupported.items()
    }
    increase_seen = [t for t in settings.intents.increase if _find(t, text, lowered)]
    unsupported = {k: v for k, v in verbs_seen.items() if v}
    if unsupported and not increase_seen:
        kind, verbs = next(iter(unsupported.items()))
        raise ObjectiveError(
            f"{verbs[0]!r} asks to {kind} something; this version plans objectives that increase a goal metric "
            f"({', '.join(settings.intents.increase[:6])} ...). Supported goal metrics:",
            supported_metrics(settings),
        )

    # the goal metric
    metric_terms: dict[str, list[Any]] = {}
    for name, spec in settings.metrics.items():
        for phrase in spec.phrases:
            metric_terms.setdefault(phrase, []).append(name)
    metric_spans = _matches(metric_terms, text, lowered)
    meanings_at: dict[tuple[int, int], set[str]] = {}
    for s in metric_spans:
        meanings_at.setdefault((s.start, s.end), set()).add(s.meaning)
    # a word several metrics share ("customers") defers to a word only one metric has ("paying customers")
    definite = {next(iter(m)) for m in meanings_at.values() if len(m) == 1}
    metrics = sorted(definite) if definite else sorted({s.meaning for s in metric_spans})
    if not metrics:
        raise ObjectiveError(
            f"no goal metric recognised in {text!r}; supported goal metrics ({example}):", supported_metrics(settings)
        )
    if len(metrics) > 1:
        terms = sorted({s.term for s in metric_spans if s.meaning in metrics})
        raise ObjectiveError(
            f"{' / '.join(repr(t) for t in terms)} in {text!r} could mean more than one goal metric; say which:",
            [
                f"{name}: {settings.metrics[name].description} (say {settings.metrics[name].phrases[0]!r})"
                for name in metrics
            ],
        )
    metric = metrics[0]

    # the segment
    metric_taken = [(s.start, s.end) for s in metric_spans]
    segment_terms: dict[str, list[Any]] = {}
    present = vocabulary.dimension_values
    for dimension in settings.segments.dimensions:
        for value in present.get(dimension, ()):
            if value and value.lower() != "unknown":
                segment_terms.setdefault(value, []).append((dimension, value, True))
        for value, words in settings.segments.synonyms.get(dimension, {}).items():
            known = value in present.get(dimension, ())
            for word in (value, *words):
                meanings = segment_terms.setdefault(word, [])
                if (dimension, value, True) not in meanings:
                    meanings.append((dimension, value, known))
    spans = [
        s for s in _matches(segment_terms, text, lowered) if not any(a < s.end and s.start < b for a, b in metric_taken)
    ]
    chosen: dict[str, list[str]] = {}
    by_span: dict[tuple[int, int], list[tuple[str, str, bool]]] = {}
    for s in spans:
        by_span.setdefault((s.start, s.end), []).append(s.meaning)
    for (start, end), meanings in sorted(by_span.items()):
        term = text[start:end]
        distinct = sorted({(d, v, k) for d, v, k in meanings})
        if len({(d, v) for d, v, _ in distinct}) > 1:
            raise ObjectiveError(
                f"{term!r} in {text!r} could mean more than one segment; say which:",
                [f"{d} = {v}" for d, v, _ in distinct],
            )
        dimension, value, known = distinct[0]
        if not known:
            if dimension not in present:
                raise ObjectiveError(
                    f"{term!r} means {dimension} {value}, but {settings.segments.table} has no "
                    f"{dimension} column or is not built (run `mos run`)"
                )
            values = ", ".join(v for v in present[dimension] if v) or "none"
            raise ObjectiveError(
                f"{term!r} means {dimension} {value}, which the warehouse does not have "
                f"({settings.segments.table}.{dimension} values present: {values})"
            )
        if value not in chosen.setdefault(dimension, []):
            chosen[dimension].append(value)
    segment = tuple(SegmentFilter(dimension=d, values=tuple(sorted(v))) for d, v in sorted(chosen.items()))

    # constraints first: their amounts ("CAC under $300") are not the budget
    constraints, constraint_spans = _constraints(text, vocabulary.channels)
    masked = text
    for a, b in constraint_spans:
        masked = masked[:a] + " " * (b - a) + masked[b:]

    # budget and horizon: options win; words and an option that disagree are an error
    said_budget, budget_span = _budget(masked)
    if budget_usd is not None and said_budget is not None and abs(budget_usd - said_budget) > 0.005:
        raise ObjectiveError(
            f"the objective says a budget of ${said_budget:,.0f} and --budget says ${budget_usd:,.0f}; give one"
        )
    budget = budget_usd if budget_usd is not None else said_budget
    if budget is None or budget <= 0:
        raise ObjectiveError(f'no budget in {text!r}: add one ("$100,000", "100k USD") or pass --budget')
    said_months, horizon_span = _horizon(masked)
    if months is not None and said_months is not None and abs(months - said_months) > 1e-6:
        raise ObjectiveError(f"the objective says {said_months:g} months and --months says {months:g}; give one")
    horizon = months if months is not None else said_months
    if horizon is None or horizon <= 0:
        raise ObjectiveError(f'no horizon in {text!r}: add one ("in 3 months", "12 weeks") or pass --months')

    taken = [sp for sp in (budget_span, horizon_span) if sp is not None]
    target = _target(masked, taken)
    return Objective(
        text=text,
        metric=metric,
        segment=segment,
        horizon_months=round(horizon, 4),
        horizon_days=max(1, round(horizon * DAYS_PER_MONTH)),
        budget_usd=round(float(budget), 2),
        target=target,
        constraints=constraints,
    )
