"""Comparison levels for probabilistic record matching, as SQL over a left (``l``) and right (``r``) record.

A comparison turns a pair of records into a level ``gamma``: ``-1`` when either side lacks the value
(no evidence either way), ``0`` when they disagree, and ``1..n`` for increasingly close agreement, the
highest being an exact match. The levels are evaluated by DuckDB over millions of pairs at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    """One agreement level: a SQL condition over ``l.<col>`` and ``r.<col>``."""

    label: str
    sql: str


@dataclass(frozen=True)
class Comparison:
    """How one attribute (or a few) of two records is compared."""

    name: str
    columns: tuple[str, ...]  # record columns it reads (a blocking rule on them fixes its level)
    levels: tuple[Level, ...]  # most similar first; anything else is level 0 ("disagree")
    null_sql: str  # true when the pair carries no information on this attribute
    tf_column: str | None = None  # exact agreement on a rare value weighs more (term frequency)

    @property
    def top(self) -> int:
        return len(self.levels)

    def gamma_sql(self) -> str:
        whens = " ".join(f"when {lvl.sql} then {self.top - i}" for i, lvl in enumerate(self.levels))
        return f"case when {self.null_sql} then -1 {whens} else 0 end"



def _null(*columns: str) -> str:
    return " or ".join(f"l.{c} is null or r.{c} is null" for c in columns)


def exact(column: str, tf: bool = False, name: str | None = None) -> Comparison:
    """Equal or not."""
    return Comparison(
        name=name or column,
        columns=(column,),
        levels=(Level("exact", f"l.{column} = r.{column}"),),
        null_sql=_null(column),
        tf_column=column if tf else None,
    )


def jaro_winkler(column: str, thresholds: Sequence[float] = (0.92, 0.8), tf: bool = False,
                 name: str | None = None) -> Comparison:
    """Exact, then Jaro-Winkler similarity at each threshold (descending)."""
    levels = [Level("exact", f"l.{column} = r.{column}")]
    levels += [Level(f"jw>={t}", f"jaro_winkler_similarity(l.{column}, r.{column}) >= {t}") for t in thresholds]
    return Comparison(name or column, (column,), tuple(levels), _null(column), column if tf else None)


def levenshtein(column: str, thresholds: Sequence[int] = (1, 2), tf: bool = False,
                name: str | None = None) -> Comparison:
    """Exact, then edit distance at each threshold (ascending)."""
    levels = [Level("exact", f"l.{column} = r.{column}")]
    levels += [Level(f"lev<={t}", f"levenshtein(l.{column}, r.{column}) <= {t}") for t in thresholds]
    return Comparison(name or column, (column,), tuple(levels), _null(column), column if tf else None)


def names_swapped(first: str, last: str, name: str = "name_swap") -> Comparison:
    """First and last name recorded the other way round (a common CRM entry error)."""
    return Comparison(
        name=name,
        columns=(first, last),
        levels=(Level("swapped", f"l.{first} = r.{last} and l.{last} = r.{first} and l.{first} <> l.{last}"),),
        null_sql=_null(first, last),
    )
