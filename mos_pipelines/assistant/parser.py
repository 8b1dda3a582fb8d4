"""The offline parser: a question (and the thread's last spec) -> a ``MetricSpec``, a ``CustomerSpec`` or a refusal.

Deterministic and strict: every word of the question must be understood (a metric, a dimension, a value the
warehouse has, a date, a customer field, or a word of ``filler_words``); anything else is refused with what it did
not understand and close alternatives, never guessed. Text in the question cannot widen the spec: the spec only
holds names from the manifest and the config and values from the warehouse.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from mos_pipelines.assistant.catalog import Catalog
from mos_pipelines.assistant.dates import extract
from mos_pipelines.assistant.spec import CustomerFilter, CustomerSpec, MetricFilter, MetricSpec, TimeRange

ALLOWED_PUNCTUATION = set("?.,!'\"():-%/&")
FOLLOW_UP_STARTS = ("and ", "what about ", "how about ", "only ", "now ", "same ", "also ", "just ", "but ", "then ")
NEGATIONS = {"excluding", "except", "without", "not", "excl"}
DESCENDING = {"top", "best", "highest", "largest", "biggest", "most", "greatest", "max", "maximum"}
NUMBERS = {
    w: str(i)
    for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"))
    if i
}
ASCENDING = {"bottom", "worst", "lowest", "smallest", "least", "fewest", "min", "minimum"}


@dataclass
class Parsed:
    spec: MetricSpec | CustomerSpec | None
    refusal: str | None = None
    alternatives: list[str] = field(default_factory=list)
    follow_up: bool = False


@dataclass
class _Match:
    start: int
    end: int
    meanings: list[tuple]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9_]+(?:'[a-z]+)?|[^\sa-z0-9_]", text)


def _plural(word: str) -> list[str]:
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy")):
        return [word[:-1] + "ies"]
    if word.endswith(("s", "x")):
        return [word + "es"]
    return [word + "s"]


class Vocabulary:
    """Every phrase (a tuple of words) the parser knows, with what it can mean."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.phrases: dict[tuple[str, ...], list[tuple]] = {}
        settings = catalog.settings
        layer = catalog.layer
        for name, metric in layer.metrics.items():
            if "_by_" in name:  # variants are chosen by validation, never named by a reader
                continue
            label = re.sub(r"\(.*?\)", "", metric.get("label") or "").strip()
            for words in (name, name.replace("_", " "), label, *settings.metric_words.get(name, ())):
                self.add(words, ("metric", name))
        for dim in catalog.dimension_values:
            for words in (dim, dim.replace("_", " "), *settings.dimension_words.get(dim, ())):
                self.add(words, ("dim", dim))
            for value in catalog.dimension_values[dim]:
                for words in self._value_words(value, settings.value_words.get(dim, {}).get(value, ())):
                    self.add(words, ("value", dim, value))
        lookup = settings.customers
        for noun in lookup.nouns:
            self.add(noun, ("noun",))
        for fname, spec in lookup.fields.items():
            for words in (fname.replace("_", " "), *spec.words):
                self.add(words, ("cfield", fname))
            for value in catalog.customer_values.get(fname, ()):
                extra = settings.value_words.get(fname, {}).get(value, ())
                for words in self._value_words(value, extra):
                    if not spec.prefix_required:
                        self.add(words, ("cvalue", fname, value))
                    for prefix in lookup.value_prefixes.get(fname, ()):
                        self.add(f"{prefix} {words}", ("cvalue", fname, value))
        for category, words in settings.out_of_scope.items():
            for w in words:
                self.add(w, ("oos", category))
        for w in settings.filler_words:
            self.add(w, ("filler",))
        for w in NEGATIONS:
            self.add(w, ("not",))
        self.longest = max((len(k) for k in self.phrases), default=1)

    @staticmethod
    def _value_words(value: str, extra: tuple[str, ...]) -> list[str]:
        base = value.lower()
        spaced = base.replace("_", " ")
        out = [base, spaced, *extra]
        if re.fullmatch(r"[a-z ]+", spaced) and len(spaced) > 2:
            out += [" ".join([*spaced.split()[:-1], *_plural(spaced.split()[-1])])]
        return out

    def add(self, words: str, meaning: tuple) -> None:
        key = tuple(w for w in _words(words.lower()) if w not in ALLOWED_PUNCTUATION)
        if not key:
            return
        meanings = self.phrases.setdefault(key, [])
        if meaning not in meanings:
            meanings.append(meaning)

    def scan(self, tokens: list[str]) -> tuple[list[_Match], list[str]]:
        """Longest phrases first, left to right; the tokens no phrase covers."""
        matches: list[_Match] = []
        unknown: list[str] = []
        i = 0
        while i < len(tokens):
            for size in range(min(self.longest, len(tokens) - i), 0, -1):
                key = tuple(tokens[i : i + size])
                if key in self.phrases:
                    matches.append(_Match(i, i + size, self.phrases[key]))
                    i += size
                    break
            else:
                unknown.append(tokens[i])
                i += 1
        return matches, unknown


def parse(question: str, catalog: Catalog, vocabulary: Vocabulary, previous: dict[str, Any] | None) -> Parsed:
    settings = catalog.settings
    limits = settings.limits
    if len(question) > limits.max_question_chars:
        return _refuse(catalog, f"the question is longer than {limits.max_question_chars} characters")
    text = " " + re.sub(r"[’‘`]", "'", question.lower()).strip() + " "
    odd = sorted({ch for ch in text if not (ch.isalnum() or ch.isspace() or ch in ALLOWED_PUNCTUATION or ch == "_")})
    if odd:
        return _refuse(catalog, f"the question has characters I do not read: {' '.join(odd)}")
    stripped = text.strip()
    follow_cue = stripped.startswith(FOLLOW_UP_STARTS) or stripped in ("and?", "and")
    try:
        found, rest = extract(text, catalog.as_of)
    except ValueError as exc:
        return _refuse(catalog, f"I could not read a date: {exc}")
    # top-N and ordering words (before phrases: "top 5", "3 lowest")
    order: str | None = None
    limit: int | None = None
    rest = re.sub(r"\b(" + "|".join(NUMBERS) + r")\b", lambda m: NUMBERS[m.group(1)], rest)
    ranked = r"(top|best|highest|largest|biggest|bottom|worst|lowest|smallest)"
    number_word = re.search(rf"\b{ranked}\s+(\d{{1,4}})\b", rest)
    number_first = re.search(rf"\b(\d{{1,4}})\s+{ranked}\b", rest)
    if number_word or number_first:
        word, count = number_word.groups() if number_word else number_first.groups()[::-1]  # type: ignore[union-attr]
        order = "desc" if word in DESCENDING else "asc"
        limit = int(count)
        hit = number_word or number_first
        assert hit is not None
        rest = rest[: hit.start()] + " " * len(hit.group(0)) + rest[hit.end() :]
    tokens = [t for t in _words(rest) if t not in ALLOWED_PUNCTUATION]
    for t in tokens:
        if order is None and t in DESCENDING:
            order = "desc"
        elif order is None and t in ASCENDING:
            order = "asc"
    if limit is None and ("top" in tokens or "bottom" in tokens):
        limit = limits.default_top_n
    matches, unknown = vocabulary.scan(tokens)
    oos = [m for m in matches if any(x[0] == "oos" for x in m.meanings) and not _has(m, "metric", "value", "cvalue")]
    if oos:
        words = " ".join(" ".join(tokens[m.start : m.end]) for m in oos)
        categories = sorted({x[1] for m in oos for x in m.meanings if x[0] == "oos"})
        return _refuse(catalog, f"{', '.join(categories)} ({words!r}) is not something I can answer from the metrics")
    if unknown:
        return _refuse(catalog, f"I do not know {', '.join(repr(u) for u in dict.fromkeys(unknown))}", unknown)
    has_metric = any(_has(m, "metric") for m in matches)
    has_noun = any(_has(m, "noun") for m in matches)
    has_customer = has_noun or any(
        (_has(m, "cfield") and not _has(m, "dim")) or (_has(m, "cvalue") and _only(m, "cvalue", "filler"))
        for m in matches
    )
    prev_kind: str | None = (previous or {}).get("kind")
    kind: str | None
    if has_metric:
        kind = "metric"
    elif has_noun or (has_customer and prev_kind != "metric"):
        kind = "customers"
    elif previous and (follow_cue or matches or found != type(found)()):
        kind = prev_kind
    else:
        return _refuse(catalog, "the question names no metric and no customers")
    if kind == "metric":
        base = previous if previous and prev_kind == "metric" and (follow_cue or not has_metric) else None
        return _metric(catalog, matches, tokens, found, order, limit, base)
    base = previous if previous and prev_kind == "customers" and (follow_cue or not has_noun) else None
    return _customers(catalog, matches, tokens, base, stripped)


def _has(m: _Match, *kinds: str) -> bool:
    return any(x[0] in kinds for x in m.meanings)


def _only(m: _Match, *kinds: str) -> bool:
    return all(x[0] in kinds for x in m.meanings)


def _metric(catalog, matches, tokens, found, order, limit, base) -> Parsed:
    metrics: list[str] = []
    group_by: list[str] = []
    filters: dict[str, list[str]] = {}
    negated: dict[str, bool] = {}
    negate_next = False
    singular_dim = False
    for m in matches:
        kinds = {x[0] for x in m.meanings}
        if "metric" in kinds:
            metrics += [x[1] for x in m.meanings if x[0] == "metric" and x[1] not in metrics]
        elif "value" in kinds:
            # every value the words name in one dimension (spellings that differ only in case or punctuation)
            dim = next(x[1] for x in m.meanings if x[0] == "value")
            filters.setdefault(dim, [])
            for x in sorted(x for x in m.meanings if x[0] == "value" and x[1] == dim):
                if x[2] not in filters[dim]:
                    filters[dim].append(x[2])
            negated[dim] = negated.get(dim, False) or negate_next
        elif "dim" in kinds:
            dim = next(x[1] for x in m.meanings if x[0] == "dim")
            neighbours = [n for n in matches if n.end == m.start or n.start == m.end]
            if any(x[0] == "value" and x[1] == dim for n in neighbours for x in n.meanings):
                continue  # "the UK market", "region EU": the words name the filter, not a split
            if dim not in group_by:
                group_by.append(dim)
            word = tokens[m.end - 1]
            singular_dim = singular_dim or not word.endswith("s")
        elif kinds & {"filler", "not"}:
            pass
        else:
            words = " ".join(tokens[m.start : m.end])
            return _refuse(catalog, f"{words!r} cannot filter or split a metric", [words])
        negate_next = "not" in kinds
    if found.grain:
        group_by.append(f"metric_time__{found.grain}")
    time_range = TimeRange(start=found.start, end=found.end, label=found.label) if found.start else None
    new_filters = [MetricFilter(dimension=d, values=tuple(v), negate=negated.get(d, False)) for d, v in filters.items()]
    if base is not None:
        prev = MetricSpec.model_validate(base["spec"])
        kept = [f for f in prev.filters if f.dimension not in filters]
        metrics = metrics or list(base.get("asked_metrics") or prev.metrics)
        spec = MetricSpec(
            metrics=tuple(metrics),
            group_by=tuple(group_by) if group_by else prev.group_by,
            filters=tuple(kept + new_filters),
            time_range=time_range or prev.time_range,
            compare=found.compare or prev.compare,
            order_by=metrics[0]
            if order
            else ((prev.order_by if prev.order_by in metrics else metrics[0]) if prev.order_by else None),
            descending=(order != "asc") if order else prev.descending,
            limit=limit if order else prev.limit,
        )
    else:
        if not metrics:
            return _refuse(catalog, "the question names no metric")
        if order and limit is None and singular_dim and group_by:
            limit = 1
        spec = MetricSpec(
            metrics=tuple(metrics),
            group_by=tuple(group_by),
            filters=tuple(new_filters),
            time_range=time_range,
            compare=found.compare,
            order_by=metrics[0] if order else None,
            descending=order != "asc",
            limit=limit if order else None,
        )
    if spec.compare and spec.time_range is None:
        spec = spec.model_copy(update={"time_range": _compare_default(catalog, spec.compare)})
    return Parsed(spec, follow_up=base is not None)


def _compare_default(catalog: Catalog, compare: str) -> TimeRange:
    """The current period of a comparison asked without a range: the week, month or year to date."""
    import datetime

    as_of = catalog.as_of
    assert as_of is not None
    if compare == "previous_week":
        start = as_of - datetime.timedelta(days=as_of.weekday())
        return TimeRange(start=start, end=as_of, label="this week")
    if compare == "previous_year":
        return TimeRange(start=as_of.replace(month=1, day=1), end=as_of, label="this year")
    if compare == "previous_month":
        return TimeRange(start=as_of.replace(day=1), end=as_of, label="this month")
    first = catalog.first_day or as_of
    return TimeRange(start=first, end=as_of, label="all data")


def _customers(catalog, matches, tokens, base, stripped) -> Parsed:
    lookup = catalog.settings.customers
    fields: list[str] = []
    filters: dict[str, list[str]] = {}
    explicit_stage = "stage" in tokens or "stages" in tokens
    for m in matches:
        cvalues = [x for x in m.meanings if x[0] == "cvalue"]
        if cvalues:
            is_noun = _has(m, "noun")
            if is_noun and (explicit_stage or tokens[m.start] in ("customer", "customers")):
                continue  # "EU leads in stage SQL": "leads" is the noun
            fname = cvalues[0][1]
            filters.setdefault(fname, [])
            for x in sorted(x for x in cvalues if x[1] == fname):
                if x[2] not in filters[fname]:
                    filters[fname].append(x[2])
        elif _has(m, "cfield") and not _has(m, "noun"):
            fname = next(x[1] for x in m.meanings if x[0] == "cfield")
            if fname not in fields and (not _has(m, "filler") or fname in ("email", "phone")):
                fields.append(fname)
        elif _has(m, "noun", "filler", "not", "cfield"):
            continue
        elif _has(m, "value"):
            words = " ".join(tokens[m.start : m.end])
            return _refuse(catalog, f"customers cannot be filtered by {words!r}", [words])
        else:
            words = " ".join(tokens[m.start : m.end])
            return _refuse(catalog, f"{words!r} is not a customer field", [words])
    count_only = bool(re.match(r"^(how many|number of|count)\b", stripped))
    if fields:
        shown = list(dict.fromkeys(["customer_id", *fields]))
    else:
        shown = list(lookup.shown)
    new_filters = [CustomerFilter(field=f, values=tuple(v)) for f, v in filters.items()]
    if base is not None:
        prev = CustomerSpec.model_validate(base["spec"])
        kept = [f for f in prev.filters if f.field not in filters]
        spec = CustomerSpec(
            fields=tuple(shown) if fields else prev.fields,
            filters=tuple(kept + new_filters),
            count_only=count_only or (prev.count_only and not fields),
        )
    else:
        spec = CustomerSpec(fields=tuple(shown), filters=tuple(new_filters), count_only=count_only)
    return Parsed(spec, follow_up=base is not None)


def _refuse(catalog: Catalog, reason: str, unknown: list[str] | None = None) -> Parsed:
    alternatives = []
    for word in unknown or []:
        close = difflib.get_close_matches(
            word, [m.replace("_", " ") for m in catalog.metric_names() if "_by_" not in m], n=2, cutoff=0.6
        )
        alternatives += [f"{c} by channel" for c in close]
    alternatives += catalog.alternatives()
    return Parsed(None, refusal=reason, alternatives=list(dict.fromkeys(alternatives))[:6])
