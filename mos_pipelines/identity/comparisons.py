"""Comparison levels for probabilistic record matching, as SQL over a left (``l``) and right (``r``) record.

A comparison turns a pair of records into a level ``gamma``: ``-1`` when the pair carries no evidence on it
(a value missing on either side), ``0`` when the values disagree, and ``1..n`` for increasingly close
agreement, the highest being the first level listed. The levels are evaluated by DuckDB over millions of
pairs at once.

Levels are built from a small vocabulary (:func:`level`): exact agreement on one or more columns,
Jaro-Winkler, Levenshtein and Damerau-Levenshtein thresholds, first and last name swapped, dates with day
and month transposed or agreeing on year and month / year only, token-set (Jaccard) overlap, a prefix,
or any SQL condition. A similarity (an edit distance, a Jaro-Winkler score) is computed once per pair and
column however many levels test it. A level can carry a term-frequency column: exact agreement on a rare
value of it weighs more than agreement on a common one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mos_pipelines.configuration.identity import LEVEL_KINDS

_RECORD_REF = re.compile(r"\b([lr])\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Level:
    """One agreement level: a SQL condition over ``l.<col>``, ``r.<col>`` and the comparison's similarities."""

    label: str
    sql: str  # may use ``{key}`` placeholders of the comparison's ``similarities``
    tf_column: str | None = None  # exact agreement on a rare value of this column weighs more
    columns: tuple[str, ...] = ()  # record columns it reads (for null handling and population checks)


@dataclass(frozen=True)
class Comparison:
    """How one attribute (or a few that describe one thing) of two records is compared."""

    name: str
    columns: tuple[str, ...]  # record columns it reads (a blocking rule on them fixes its level)
    levels: tuple[Level, ...]  # most similar first; anything else is level 0 ("disagree")
    null_sql: str  # true when the pair carries no information on this attribute
    similarities: tuple[tuple[str, str], ...] = ()  # (key, SQL) computed once per pair, used as {key} in levels

    @property
    def top(self) -> int:
        return len(self.levels)

    @property
    def tf_column(self) -> str | None:
        """The term-frequency column of the top level (None without one)."""
        return self.levels[0].tf_column

    def level_of(self, k: int) -> Level:
        """The level whose gamma is ``k`` (1..top)."""
        return self.levels[self.top - k]

    def tf_levels(self) -> list[tuple[int, str]]:
        """(gamma, column) of every level with a term-frequency adjustment."""
        return [(self.top - k, lvl.tf_column) for k, lvl in enumerate(self.levels) if lvl.tf_column]

    def _shared(self, key: str) -> bool:
        """Whether a similarity is computed once per pair up front: it is used by several levels and leads
        the condition of at least one of them. One that only ever follows another similarity in an ``and``
        (the last name's after the first name's) is computed in the CASE, for the few pairs whose first
        condition held: at 1M records this skipped 8M of 10M Jaro-Winkler computations of last names."""
        placeholder = f"{{{key}}}"
        using = [lvl.sql for lvl in self.levels if placeholder in lvl.sql]
        if len(using) < 2:
            return False
        others = [f"{{{other}}}" for other, _ in self.similarities if other != key]

        def leads(sql: str) -> bool:
            first = min((sql.find(o) for o in others if o in sql), default=len(sql))
            return sql.find(placeholder) < first

        return any(leads(sql) for sql in using)

    def staged_sql(self, i: int) -> tuple[list[str], str, set[tuple[str, str]]]:
        """The level in two stages: inner select items over ``l`` and ``r`` (the similarities ``s_i_k`` that
        several levels use), the outer CASE, and the ``(side, column)`` values the outer CASE reads
        (selected once for all comparisons as ``l__<column>`` / ``r__<column>``).

        A similarity several levels test is one inner item, computed once per pair (a single expression
        would reuse a select alias, which DuckDB inlines wherever it is used). Everything else stays in
        the outer CASE, which evaluates a condition only for pairs no earlier level took: on 738k CRM
        candidate pairs this took 2/3 of the time of computing every condition for every pair."""
        inner, names = [], {}
        for k, (key, sql) in enumerate(self.similarities):
            if self._shared(key):
                names[key] = f"s_{i}_{k}"
                inner.append(f"case when {self.null_sql} then null else {sql} end as s_{i}_{k}")
            else:  # computed in the CASE, only for pairs no earlier level (or condition) took
                names[key] = f"({sql})"
        refs: set[tuple[str, str]] = set()

        def outer(sql: str) -> str:
            for key, alias in names.items():
                sql = sql.replace(f"{{{key}}}", alias)
            refs.update(_RECORD_REF.findall(sql))
            return _RECORD_REF.sub(r"\1__\2", sql)

        whens = " ".join(f"when {outer(lvl.sql)} then {self.top - k}" for k, lvl in enumerate(self.levels))
        return inner, f"case when {outer(self.null_sql)} then -1 {whens} else 0 end", refs


# ------------------------------------------------------------------------------------------ level builders


def _null_any(columns: Sequence[str]) -> str:
    return " or ".join(f"l.{c} is null or r.{c} is null" for c in columns)


def _all(columns: Sequence[str], template: str) -> str:
    return " and ".join(template.format(c=c) for c in columns)


def _similarity(kind: str, column: str, bound: int | None = None) -> tuple[str, str]:
    """(key, SQL) of a per-pair similarity of one column; exact agreement short-cuts the function."""
    col_l, col_r = f"l.{column}", f"r.{column}"
    if kind == "jaro_winkler":
        return (
            f"jw_{column}",
            f"case when {col_l} = {col_r} then 1.0 else jaro_winkler_similarity({col_l}, {col_r}) end",
        )
    if kind in ("levenshtein", "damerau_levenshtein"):
        if bound is None:
            raise ValueError(f"a {kind} similarity needs the largest distance tested (bound)")
        # DuckDB's edit distances count bytes, so the byte-length difference is a lower bound: pairs
        # further apart than the largest threshold skip the function.
        return (
            f"{kind}_{column}",
            f"case when {col_l} = {col_r} then 0 when abs(strlen({col_l}) - strlen({col_r})) > {bound} then {bound + 1} "
            f"else {kind}({col_l}, {col_r}) end",
        )
    if kind == "jaccard":
        tokens_l, tokens_r = f"string_split({col_l}, ' ')", f"string_split({col_r}, ' ')"
        return (
            f"jaccard_{column}",
            f"case when {col_l} = {col_r} then 1.0 else len(list_intersect(list_distinct({tokens_l}), list_distinct({tokens_r})))"
            f" / len(list_distinct(list_concat({tokens_l}, {tokens_r}))) end",
        )
    raise ValueError(f"no similarity for {kind!r}")


def _required(kind: str, value: float | int | str | None) -> float | int | str:
    if value is None:
        raise ValueError(f"a {kind} level needs a value (its threshold)")
    return value


def level(
    kind: str,
    columns: Sequence[str],
    value: float | int | str | None = None,
    *,
    label: str | None = None,
    tf_column: str | None = None,
    bounds: dict[str, int] | None = None,
) -> tuple[Level, list[tuple[str, str]]]:
    """A level of ``kind`` over ``columns`` (see ``LEVEL_KINDS``) and the similarities it needs.

    ``value``: the threshold (similarity at least, distance at most, years at most, prefix length) or, for
    ``sql``, the condition. Date kinds expect ``YYYYMMDD`` text. ``bounds``: per column, the largest edit
    distance any level of the comparison tests (the similarity is shared)."""
    cols = tuple(columns)
    if kind not in LEVEL_KINDS:
        raise ValueError(f"unknown level kind {kind!r} (known: {', '.join(LEVEL_KINDS)})")
    sims: list[tuple[str, str]] = []
    if kind == "exact":
        sql, default = _all(cols, "l.{c} = r.{c}"), "exact"
    elif kind in ("jaro_winkler", "jaccard"):
        threshold = float(_required(kind, value))
        sims = [_similarity(kind, c) for c in cols]
        sql = " and ".join(f"{{{key}}} >= {threshold!r}" for key, _ in sims)
        default = f"{'jw' if kind == 'jaro_winkler' else 'jaccard'}>={value:g}"
    elif kind in ("levenshtein", "damerau_levenshtein"):
        distance = int(_required(kind, value))
        bounds = bounds or {}
        sims = [_similarity(kind, c, bounds.get(c, distance)) for c in cols]
        sql = " and ".join(f"{{{key}}} <= {distance}" for key, _ in sims)
        default = f"{'lev' if kind == 'levenshtein' else 'dl'}<={distance}"
    elif kind == "swapped":
        if len(cols) != 2:
            raise ValueError("a swapped level compares exactly two columns (first and last name)")
        a, b = cols
        sql, default = f"l.{a} = r.{b} and l.{b} = r.{a} and l.{a} <> l.{b}", "swapped"
    elif kind == "day_month_swapped":
        sql = _all(
            cols,
            "substr(l.{c}, 1, 4) = substr(r.{c}, 1, 4) and substr(l.{c}, 5, 2) = substr(r.{c}, 7, 2) "
            "and substr(l.{c}, 7, 2) = substr(r.{c}, 5, 2) and l.{c} <> r.{c}",
        )
        default = "day/month swapped"
    elif kind == "year_month":
        sql, default = _all(cols, "substr(l.{c}, 1, 6) = substr(r.{c}, 1, 6)"), "same year and month"
    elif kind == "year":
        sql, default = _all(cols, "substr(l.{c}, 1, 4) = substr(r.{c}, 1, 4)"), "same year"
    elif kind == "within_years":
        years = int(_required(kind, value))
        sql = _all(
            cols,
            f"abs(try_cast(substr(l.{{c}}, 1, 4) as integer) - try_cast(substr(r.{{c}}, 1, 4) as integer)) <= {years}",
        )
        default = f"within {years} years"
    elif kind == "prefix":
        length = int(_required(kind, value))
        sql, default = (
            _all(cols, f"substr(l.{{c}}, 1, {length}) = substr(r.{{c}}, 1, {length})"),
            f"first {length} characters",
        )
    else:  # sql
        sql, default = str(value), "custom"
    return Level(label or default, sql, tf_column, cols), sims


def build(name: str, specs: Sequence[dict]) -> Comparison:
    """A comparison from level specs ``{"kind", "columns", "value"?, "label"?, "tf_column"?}``, most similar first.

    The pair carries no evidence (level -1) when no level can be evaluated: every level reads a column
    missing on one side."""
    bounds: dict[str, int] = {}
    for spec in specs:
        if spec["kind"] in ("levenshtein", "damerau_levenshtein"):
            for c in spec["columns"]:
                bounds[c] = max(bounds.get(c, 0), int(spec["value"]))
    levels, similarities = [], {}
    for spec in specs:
        lvl, sims = level(
            spec["kind"],
            spec["columns"],
            spec.get("value"),
            label=spec.get("label"),
            tf_column=spec.get("tf_column"),
            bounds=bounds,
        )
        levels.append(lvl)
        similarities.update(dict(sims))
    if not levels:
        raise ValueError(f"comparison {name!r} has no levels")
    column_sets = list(dict.fromkeys(lvl.columns for lvl in levels))
    columns = tuple(dict.fromkeys(c for cols in column_sets for c in cols))
    null_sql = (
        " and ".join(f"({_null_any(cols)})" for cols in column_sets) if len(column_sets) > 1 else _null_any(columns)
    )
    return Comparison(name, columns, tuple(levels), null_sql, tuple(similarities.items()))


# ------------------------------------------------------------------------------- common comparisons, in code


def exact(column: str, tf: bool = False, name: str | None = None) -> Comparison:
    """Equal or not."""
    return build(name or column, [{"kind": "exact", "columns": [column], "tf_column": column if tf else None}])


def jaro_winkler(
    column: str, thresholds: Sequence[float] = (0.92, 0.8), tf: bool = False, name: str | None = None
) -> Comparison:
    """Exact, then Jaro-Winkler similarity at each threshold (descending)."""
    specs: list[dict[str, Any]] = [{"kind": "exact", "columns": [column], "tf_column": column if tf else None}]
    specs += [{"kind": "jaro_winkler", "columns": [column], "value": t} for t in sorted(thresholds, reverse=True)]
    return build(name or column, specs)


def levenshtein(
    column: str, thresholds: Sequence[int] = (1, 2), tf: bool = False, name: str | None = None
) -> Comparison:
    """Exact, then edit distance at each threshold (ascending)."""
    specs: list[dict[str, Any]] = [{"kind": "exact", "columns": [column], "tf_column": column if tf else None}]
    specs += [{"kind": "levenshtein", "columns": [column], "value": t} for t in sorted(thresholds)]
    return build(name or column, specs)


def names_swapped(first: str, last: str, name: str = "name_swap") -> Comparison:
    """First and last name recorded the other way round (a common CRM entry error)."""
    return build(name, [{"kind": "swapped", "columns": [first, last]}])


def birth_date(column: str, name: str | None = None) -> Comparison:
    """A date as ``YYYYMMDD`` text: exact, one typo, day and month transposed, same year and month, same year."""
    return build(
        name or column,
        [
            {"kind": "exact", "columns": [column]},
            {"kind": "damerau_levenshtein", "columns": [column], "value": 1},
            {"kind": "day_month_swapped", "columns": [column]},
            {"kind": "year_month", "columns": [column]},
            {"kind": "year", "columns": [column]},
        ],
    )
