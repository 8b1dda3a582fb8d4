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
    sql: str  # may use ``{s}``: the comparison's similarity value


@dataclass(frozen=True)
class Comparison:
    """How one attribute (or a few) of two records is compared."""

    name: str
    columns: tuple[str, ...]  # record columns it reads (a blocking rule on them fixes its level)
    levels: tuple[Level, ...]  # most similar first; anything else is level 0 ("disagree")
    null_sql: str  # true when the pair carries no information on this attribute
    tf_column: str | None = None  # exact agreement on a rare value weighs more (term frequency)
    similarity_sql: str | None = None  # computed once per pair as ``{s}`` for the levels (see module doc)

    @property
    def top(self) -> int:
        return len(self.levels)

    def similarity_select(self) -> str | None:
        """The similarity, null where the levels cannot need it (missing values, exact agreement)."""
        if self.similarity_sql is None:
            return None
        return f"case when {self.null_sql} or ({self.levels[0].sql}) then null else {self.similarity_sql} end"

    def gamma_sql(self) -> str:
        """The level as one SQL expression over ``l`` and ``r`` (simple; computes a similarity per level)."""
        similarity = f"({self.similarity_sql})" if self.similarity_sql else ""
        whens = " ".join(f"when {lvl.sql.replace('{s}', similarity)} then {self.top - i}" for i, lvl in enumerate(self.levels))
        return f"case when {self.null_sql} then -1 {whens} else 0 end"

    def staged_sql(self, i: int) -> tuple[list[str], str]:
        """The level in two stages, for the same result with one similarity computation per pair.

        Returns the inner select items over ``l`` and ``r`` (named ``n_i``, ``s_i``, ``b_i_k``) and the
        outer expression over those names only. (A single expression would reuse a select alias, and
        DuckDB inlines the alias wherever it is used, computing the similarity once per level.)
        """
        inner = [f"({self.null_sql}) as n_{i}"]
        if self.similarity_sql is not None:
            inner.append(f"{self.similarity_select()} as s_{i}")
        whens = []
        for k, lvl in enumerate(self.levels):
            if "{s}" in lvl.sql:
                whens.append(f"when {lvl.sql.replace('{s}', f's_{i}')} then {self.top - k}")
            else:
                inner.append(f"({lvl.sql}) as b_{i}_{k}")
                whens.append(f"when b_{i}_{k} then {self.top - k}")
        return inner, f"case when n_{i} then -1 {' '.join(whens)} else 0 end"



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
    levels += [Level(f"jw>={t}", f"{{s}} >= {t}") for t in sorted(thresholds, reverse=True)]
    return Comparison(name or column, (column,), tuple(levels), _null(column), column if tf else None,
                      similarity_sql=f"jaro_winkler_similarity(l.{column}, r.{column})")


def levenshtein(column: str, thresholds: Sequence[int] = (1, 2), tf: bool = False,
                name: str | None = None) -> Comparison:
    """Exact, then edit distance at each threshold (ascending)."""
    bound = max(thresholds)
    levels = [Level("exact", f"l.{column} = r.{column}")]
    levels += [Level(f"lev<={t}", f"{{s}} <= {t}") for t in sorted(thresholds)]
    # DuckDB's levenshtein counts bytes, so the byte-length difference is its lower bound.
    distance = (f"case when abs(strlen(l.{column}) - strlen(r.{column})) > {bound} then {bound + 1} "
                f"else levenshtein(l.{column}, r.{column}) end")
    return Comparison(name or column, (column,), tuple(levels), _null(column), column if tf else None,
                      similarity_sql=distance)


def names_swapped(first: str, last: str, name: str = "name_swap") -> Comparison:
    """First and last name recorded the other way round (a common CRM entry error)."""
    return Comparison(
        name=name,
        columns=(first, last),
        levels=(Level("swapped", f"l.{first} = r.{last} and l.{last} = r.{first} and l.{first} <> l.{last}"),),
        null_sql=_null(first, last),
    )
