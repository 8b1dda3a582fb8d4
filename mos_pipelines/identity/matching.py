"""Unsupervised probabilistic record matching (Fellegi–Sunter with EM) on DuckDB.

Pipeline, all in one DuckDB connection:

1. **Blocking**: candidate pairs are records equal on every expression of at least one blocking rule.
2. **Comparison vectors**: each candidate pair gets a level per comparison (see ``comparisons``).
3. **u probabilities** (how often non-matches agree) from a seeded random sample of record pairs,
   which are almost all non-matches.
4. **m probabilities** by expectation–maximisation on the *counts of distinct comparison patterns*
   (a few hundred rows even for tens of millions of pairs), with u held fixed, in one session per
   training rule: pairs blocked on a rule agree on its columns by construction, so the comparisons of
   those columns are left out of that session and estimated in another.
5. **λ** (the share of all record pairs that match): the expected number of matches among the candidate
   pairs under the fitted m and u, over all n·(n−1)/2 pairs, iterated to a fixed point (EM for λ alone,
   with pairs outside the blocks taken as non-matches). The per-session estimate (a session's matches
   divided by the chance that a match agrees on its block) is kept as the starting value; it needs the
   probability that a match agrees on a block's columns, which multi-column comparisons (names swapped,
   workplace) do not give, and it overshot 10× on sparse person data.
6. **Scoring**: match weight = log2 prior odds + Σ log2(m/u), with term-frequency adjustment on levels
   that carry one (agreement on a rare value weighs more); probability = 1 / (1 + 2^-weight).

Clustering of the scored pairs lives in ``clustering``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from mos_pipelines.identity.comparisons import Comparison
from mos_pipelines.warehouse import scalar


@dataclass(frozen=True)
class MatchSettings:
    """What to compare and how; thresholds for clustering live in ``ClusterSettings``."""

    comparisons: tuple[Comparison, ...]
    blocking_rules: tuple[tuple[str, ...], ...]  # each rule: SQL expressions over one record, all equal
    training_rules: tuple[tuple[str, ...], ...] = ()  # EM sessions (column names); default: blocking rules
    derived_columns: tuple[tuple[str, str], ...] = ()  # (name, SQL over one record) added before matching
    max_block_size: int | None = None  # a blocking key value shared by more records than this blocks nothing
    rule_block_sizes: tuple[tuple[tuple[str, ...], int], ...] = ()  # (rule, its own cap) where it has one
    # (rule, (columns, n)): in blocks of more than n records the rule pairs two records only where, on each
    # column, at least one of them has no value (n = 0: in every block)
    rule_unless_both_have: tuple[tuple[tuple[str, ...], tuple[tuple[str, ...], int]], ...] = ()
    u_sample_pairs: int = 1_000_000
    u_rounds: int = 1  # re-estimations of u without the random pairs' likely matches (see ``fit``)
    session_u: bool = True  # EM sessions also estimate u of their own block (m only is kept; see ``_em``)
    em_max_iterations: int = 50
    em_tolerance: float = 1e-5
    min_tf: float = 1e-6  # floor of a term frequency (rare values cannot weigh infinitely much)
    tf_min_records: tuple[tuple[str, int], ...] = ()  # (column, n): values held by fewer records get no tf
    link_only_column: str | None = None  # compare only records whose values differ here (A↔B linkage)
    seed: int = 42


@dataclass
class FittedModel:
    """Estimated parameters, for scoring more pairs and for the model card."""

    lam: float
    m: dict[str, dict[int, float]]
    u: dict[str, dict[int, float]]
    iterations: int  # the most any EM session needed
    converged: bool  # every session converged
    candidate_pairs: int
    sessions: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    lam_sessions: float | None = None  # the per-session estimate λ started from (diagnostic)

    def weight(self, comparison: str, level: int) -> float:
        """log2 Bayes factor of one level (0 for the null level)."""
        if level < 0:
            return 0.0
        return math.log2(self.m[comparison][level] / self.u[comparison][level])


def _reads_any(rule: Sequence[str], columns: Sequence[str], derived: Sequence[tuple[str, str]] = ()) -> bool:
    """Whether a blocking rule's expressions read any of the columns (so its pairs agree on them); a derived
    column reads what its SQL reads."""
    expanded = list(rule)
    for name, sql in reversed(list(derived)):  # later derived columns may use earlier ones
        expanded = [re.sub(rf"\b{re.escape(name)}\b", f"{name} ({sql})", e) for e in expanded]
    return any(re.search(rf"\b{re.escape(col)}\b", expr) for expr in expanded for col in columns)


def _rule_sql(rule: Sequence[str]) -> str:
    """Join condition of a blocking rule: a column name, or an expression over ``{t}`` (the record)."""
    sides = [(e.format(t="l"), e.format(t="r")) if "{t}" in e else (f"l.{e}", f"r.{e}") for e in rule]
    return " and ".join(f"{left} = {right}" for left, right in sides)


def register_records(
    con: duckdb.DuckDBPyConnection,
    records: pd.DataFrame | str,
    id_column: str,
    derived: Sequence[tuple[str, str]] = (),
) -> None:
    """Make table ``_mx_records`` with an integer ``_rid`` (ordered by the record id: deterministic), and the
    ``derived`` columns (see ``add_derived_columns``) in the same pass. ``records``: a frame, or the name of a
    table or view the connection already has (on Spark, records that never pass through this process)."""
    source = records if isinstance(records, str) else "_mx_input"
    if not isinstance(records, str):
        con.register("_mx_input", records)
    # A sorted copy numbered by its row id (DuckDB keeps an ORDER BY's order on insert): at 1M records 0.9 s,
    # where row_number() over (order by ...) took 1.4 s.
    con.execute(f"create or replace temp table _mx_sorted as select * from {source} order by {id_column}")
    if not isinstance(records, str):
        con.unregister("_mx_input")
    try:
        con.execute(
            f"create or replace temp table _mx_records as select rowid as _rid, *{_derived_items(con, '_mx_sorted', derived)} "
            "from _mx_sorted"
        )
    finally:
        con.execute("drop table _mx_sorted")


def _derived_items(con: duckdb.DuckDBPyConnection, table: str, derived: Sequence[tuple[str, str]]) -> str:
    """``, (SQL) as name`` for each derived column not already in ``table``; one reading another reads its SQL."""
    present = {row[0] for row in con.execute(f"describe {table}").fetchall()}
    pending = [(name, sql) for name, sql in derived if name not in present]
    sqls = dict(pending)
    expanded: dict[str, str] = {}
    for name, sql in pending:
        for _ in range(len(sqls)):  # a chain of columns reading columns is at most this long (no cycles)
            readers = [other for other in sqls if other != name and re.search(rf"\b{re.escape(other)}\b", sql)]
            if not readers:
                break
            for other in readers:
                sql = re.sub(rf"\b{re.escape(other)}\b", f"({sqls[other]})", sql)
        expanded[name] = sql
    return "".join(f", ({sql}) as {name}" for name, sql in expanded.items())


def add_derived_columns(con: duckdb.DuckDBPyConnection, derived: Sequence[tuple[str, str]]) -> None:
    """Add each ``(name, SQL)`` to ``_mx_records`` (a later one may use an earlier one); a column already
    there is kept. All are added in one pass over the table: a column that reads another one being added
    reads its SQL instead (at 1M records each pass rewrites the table)."""
    items = _derived_items(con, "_mx_records", derived)
    if items:
        con.execute(f"create or replace temp table _mx_records as select *{items} from _mx_records")  # keeps order


def _compare_sql(settings: MatchSettings, pairs: str) -> str:
    """Select ``pairs``' columns plus a level ``g_i`` per comparison, and for term-frequency comparisons
    ``tf_i``, the frequency of the agreed value (null unless at a term-frequency level), so scoring needs
    no joins.

    Three layers (see ``Comparison.staged_sql``): the inner query evaluates each similarity once and
    selects the record values the level conditions read; the middle one turns them into levels; the outer
    one picks the term frequency of each pair's level."""
    inner, levels, tfs, helpers = ["p.*"], [], [], []
    refs: set[tuple[str, str]] = set()
    for i, c in enumerate(settings.comparisons):
        items, gamma, reads = c.staged_sql(i)
        inner += items
        helpers += [item.rsplit(" as ", 1)[1] for item in items]
        refs |= reads
        levels.append(f"{gamma} as g_{i}")
        tf_levels = c.tf_levels()
        if tf_levels:
            for gamma_k, column in tf_levels:
                inner.append(f"l._tf_{column} as _tfv_{i}_{gamma_k}")
                helpers.append(f"_tfv_{i}_{gamma_k}")
            whens = " ".join(f"when {gamma_k} then _tfv_{i}_{gamma_k}" for gamma_k, _ in tf_levels)
            tfs.append(f"case g_{i} {whens} end as tf_{i}")
    for side, column in sorted(refs):
        inner.append(f"{side}.{column} as {side}__{column}")
        helpers.append(f"{side}__{column}")
    return (
        f"select * exclude ({', '.join(helpers)}){''.join(', ' + t for t in tfs)} from ("
        f"select *, {', '.join(levels)} from ("
        f"select {', '.join(inner)} "
        f"from {pairs} p join _mx_records l on l._rid = p.id_l join _mx_records r on r._rid = p.id_r))"
    )


def add_term_frequencies(con: duckdb.DuckDBPyConnection, settings: MatchSettings) -> None:
    """Add ``_tf_<column>`` to ``_mx_records``: each value's share of the non-null values of its column (null for
    a value held by fewer records than the column's ``tf_min_records``: it is weighed at its level's average)."""
    tf_columns = sorted({col for c in settings.comparisons for _, col in c.tf_levels()})
    if not tf_columns:
        return
    min_records = dict(settings.tf_min_records)

    def frequencies(col: str) -> str:
        shares = (
            f"select {col} as v, count(*) / sum(count(*)) over () as f{', count(*) as n' if col in min_records else ''} "
            f"from _mx_records where {col} is not null group by {col}"
        )
        return (
            f"(select v, f from ({shares}) where n >= {int(min_records[col])})" if col in min_records else f"({shares})"
        )

    # One hash aggregate and join per column: at 1M records and nine columns, a third of the time of windows.
    joins = " ".join(f"left join {frequencies(col)} t{k} on r.{col} = t{k}.v" for k, col in enumerate(tf_columns))
    shares = ", ".join(f"t{k}.f as _tf_{col}" for k, col in enumerate(tf_columns))
    # no re-sort (a third of this step at 1M records): every reader keys or orders by _rid
    con.execute(f"create or replace temp table _mx_records as select r.*, {shares} from _mx_records r {joins}")


def block_size_cap(settings: MatchSettings, rule: Sequence[str]) -> int | None:
    """The largest block a rule pairs: its own cap, else ``max_block_size`` (None: no cap)."""
    return dict(settings.rule_block_sizes).get(tuple(rule), settings.max_block_size)


def unless_both_have(settings: MatchSettings, rule: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """Columns on which a rule's two records may not both have a value (empty: no such condition), and the
    block size above which that holds (0: every block)."""
    return dict(settings.rule_unless_both_have).get(tuple(rule), ((), 0))


def block(
    con: duckdb.DuckDBPyConnection,
    settings: MatchSettings,
    rules: Sequence[Sequence[str]] | None = None,
    target: str = "_mx_pairs",
) -> int:
    """Create ``target(id_l, id_r, rules)``: each pair once, ``rules`` a bitmask of the rules that produced
    it (bit i = rule i), so EM sessions on a blocking rule can filter one compared table."""
    link = settings.link_only_column
    extra = f" and l.{link} <> r.{link}" if link else ""
    selects, sources = [], []
    for i, rule in enumerate(rules or settings.blocking_rules):
        cap = block_size_cap(settings, rule)
        unless, over = unless_both_have(settings, rule)
        # Per rule, the records whose keys are all filled, as one 64-bit hash of the keys: aggregates and joins
        # on an integer instead of several strings took a third of the time at 1M records (two different keys
        # with the same hash pair two records that are then compared: at 1M keys, about 1 in 10^7 runs).
        keys = [e.format(t="_mx_records") if "{t}" in e else e for e in rule]
        filled = " and ".join(f"({key}) is not null" for key in keys)
        # which of the unless_both_have columns a record fills, a bit each
        bits = " + ".join(f"({c} is not null)::int * {1 << k}" for k, c in enumerate(unless))
        hashed, source = f"_mx_keys_{i}", f"_mx_block_{i}"
        con.execute(
            f"create or replace temp table {hashed} as select _rid, hash({', '.join(keys)}) as _h"
            f"{f', {bits} as _bits' if unless else ''}{f', {link}' if link else ''} from _mx_records where {filled}"
        )
        # the records in blocks of 2 up to the cap records (a record alone in its block pairs nobody: at 1M
        # records most name keys are unique, and leaving them out shrinks every join); _over: in a block of more
        # than `over` records
        having = f" having count(*) between 2 and {int(cap)}" if cap else " having count(*) >= 2"
        con.execute(
            f"create or replace temp table {source} as select k.*, b.n > {int(over)} as _over from {hashed} k "
            f"join (select _h, count(*) as n from {hashed} group by _h{having}) b using (_h)"
        )
        con.execute(f"drop table {hashed}")
        sources.append(source)
        select = f"select l._rid as id_l, r._rid as id_r, {1 << i}::bigint as rule_bit from {source} l join {source} r "
        if not unless:
            selects.append(f"{select}on l._h = r._h and l._rid < r._rid{extra}")
            continue
        # A weak rule pairs two records only where no unless_both_have column is filled on both (their bits do
        # not overlap), in blocks of more than `over` records; smaller blocks pair everyone. One join per pair
        # of compatible fill patterns, so the pairs it leaves out are never formed (at 1M records a filter
        # after the join formed 6M pairs to keep 0.9M).
        if over:
            selects.append(f"{select}on l._h = r._h and l._rid < r._rid and not l._over and not r._over{extra}")
        both = [(a, b) for a in range(1 << len(unless)) for b in range(a, 1 << len(unless)) if not a & b]
        for a, b in both:
            ordered = " and l._rid < r._rid" if a == b else ""
            selects.append(
                f"select least(l._rid, r._rid) as id_l, greatest(l._rid, r._rid) as id_r, {1 << i}::bigint as rule_bit "
                f"from {source} l join {source} r on l._h = r._h and l._bits = {a} and r._bits = {b}"
                f"{ordered} and l._over and r._over{extra}"
            )
    con.execute(
        f"create or replace temp table {target} as select id_l, id_r, bit_or(rule_bit) as rules "
        f"from ({' union all '.join(selects)}) group by id_l, id_r"
    )
    for source in sources:
        con.execute(f"drop table {source}")
    return scalar(con, f"select count(*) from {target}")


def compare_pairs(con: duckdb.DuckDBPyConnection, settings: MatchSettings, pairs: str, target: str) -> None:
    """Create ``target`` with the comparison levels of every pair in table ``pairs(id_l, id_r)``."""
    con.execute(f"create or replace temp table {target} as {_compare_sql(settings, pairs)}")


def _level_shares(patterns: pd.DataFrame, settings: MatchSettings, weights: np.ndarray) -> dict[str, dict[int, float]]:
    """Weighted share of each level among non-null comparisons of ``patterns`` (one row per distinct level
    pattern), with add-one smoothing."""
    out: dict[str, dict[int, float]] = {}
    for i, c in enumerate(settings.comparisons):
        g = patterns[f"g_{i}"].to_numpy(dtype=int)
        counts = {lvl: float(weights[g == lvl].sum()) for lvl in range(c.top + 1)}
        total = sum(counts.values()) + c.top + 1
        out[c.name] = {lvl: (counts[lvl] + 1) / total for lvl in range(c.top + 1)}
    return out


def _log_bayes_factors(patterns: pd.DataFrame, settings: MatchSettings, m: dict, u: dict) -> np.ndarray:
    """Natural-log Bayes factor of each level pattern (term frequencies aside)."""
    log_bf = np.zeros(len(patterns))
    for i, c in enumerate(settings.comparisons):
        table = np.array([0.0] + [math.log(max(m[c.name][lvl], 1e-12) / u[c.name][lvl]) for lvl in range(c.top + 1)])
        log_bf += table[patterns[f"g_{i}"].to_numpy(dtype=int) + 1]
    return log_bf


def _posterior(lam: float, log_bf: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(math.log(lam / (1 - lam)) + log_bf, -700, 700)))


def estimate_u(
    con: duckdb.DuckDBPyConnection, settings: MatchSettings
) -> tuple[dict[str, dict[int, float]], pd.DataFrame]:
    """u probabilities from a seeded random sample of record pairs, and the sample's level patterns with
    their counts (``n``), to discount the matches among them once m and λ are known (see ``fit``)."""
    n = scalar(con, "select count(*) from _mx_records")
    k = min(settings.u_sample_pairs, n * (n - 1) // 2)
    rng = np.random.default_rng(settings.seed)
    left = rng.integers(0, n, size=int(k * 1.05) + 10)
    right = rng.integers(0, n, size=left.size)
    keep = left != right
    sample = pd.DataFrame({"id_l": np.minimum(left, right)[keep][:k], "id_r": np.maximum(left, right)[keep][:k]})
    con.register("_mx_random", sample)
    compare_pairs(con, settings, "_mx_random", "_mx_random_g")
    con.unregister("_mx_random")
    gammas = ", ".join(f"g_{i}" for i in range(len(settings.comparisons)))
    patterns = con.execute(f"select {gammas}, count(*) as n from _mx_random_g group by all").df()
    con.execute("drop table _mx_random_g")
    return _level_shares(patterns, settings, patterns["n"].to_numpy(dtype=float)), patterns


def _em(
    patterns: pd.DataFrame,
    comps: Sequence[tuple[int, Comparison]],
    u: dict[str, dict[int, float]],
    settings: MatchSettings,
) -> tuple[float, dict[str, dict[int, float]], int, bool]:
    """EM for the match share and m over pattern counts. ``comps``: (column index, comparison).

    u starts from the random pairs' u; with ``session_u`` it is re-estimated from the block's own likely
    non-matches each iteration (the session's m is kept, its u is not): inside a block of pairs that share
    a name, namesakes share a city and a job title far more often than random pairs do, and with u fixed
    at the random pairs' value EM took them for matches with a wrong birth date (m of a birth-date
    disagreement 0.119 instead of 0.005 on the sparse simulated CRM)."""
    gammas = patterns[[f"g_{i}" for i, _ in comps]].to_numpy()
    counts = patterns["n"].to_numpy(dtype=float)
    m = {c.name: {lvl: (0.9 if lvl == c.top else 0.1 / c.top) for lvl in range(c.top + 1)} for _, c in comps}
    lam = 0.5
    log_u = [np.log([u[c.name][lvl] for lvl in range(c.top + 1)]) for _, c in comps]
    for iteration in range(1, settings.em_max_iterations + 1):
        log_bf = np.zeros(len(counts))
        for j, (_, c) in enumerate(comps):
            log_m = np.log([max(m[c.name][lvl], 1e-12) for lvl in range(c.top + 1)])
            g = gammas[:, j]
            valid = g >= 0
            log_bf[valid] += log_m[g[valid]] - log_u[j][g[valid]]
        p = 1.0 / (1.0 + np.exp(-np.clip(math.log(lam / (1 - lam)) + log_bf, -700, 700)))
        w = counts * p
        new_lam = min(max(float(w.sum() / counts.sum()), 1e-9), 1 - 1e-9)
        new_m = {}
        for j, (_, c) in enumerate(comps):
            g = gammas[:, j]
            denom = w[g >= 0].sum()
            new_m[c.name] = {
                lvl: (float(w[g == lvl].sum()) + 1e-3) / (denom + 1e-3 * (c.top + 1)) for lvl in range(c.top + 1)
            }
        change = max([abs(new_lam - lam)] + [abs(new_m[k][lvl] - m[k][lvl]) for k in m for lvl in m[k]])
        if settings.session_u:
            # u of this block's non-matches, not of random pairs: pairs that share a name also share a
            # country and a city far more often than random pairs do.
            nw = counts * (1 - p)
            for j, (_, c) in enumerate(comps):
                g = gammas[:, j]
                denom = nw[g >= 0].sum()
                if denom > 0:
                    log_u[j] = np.log(
                        [(float(nw[g == lvl].sum()) + 1e-3) / (denom + 1e-3 * (c.top + 1)) for lvl in range(c.top + 1)]
                    )
        lam, m = new_lam, new_m
        if change < settings.em_tolerance:
            return lam, m, iteration, True
    return lam, m, settings.em_max_iterations, False


def _session(
    con: duckdb.DuckDBPyConnection, settings: MatchSettings, rule: Sequence[str], u: dict[str, dict[int, float]]
) -> dict:
    """One EM session on the pairs of one training rule, its comparisons left out."""
    held_out = [c for c in settings.comparisons if _reads_any(rule, c.columns, settings.derived_columns)]
    active = [(i, c) for i, c in enumerate(settings.comparisons) if c not in held_out]
    skipped = {
        "rule": list(rule),
        "pairs": 0,
        "match_share": 0.0,
        "m": {},
        "held_out": [c.name for c in held_out],
        "iterations": 0,
        "converged": True,
    }
    if not active:  # the rule fixes every comparison: nothing to learn here
        return skipped
    gcols = ", ".join(f"g_{i}" for i, _ in active)
    if tuple(rule) in settings.blocking_rules:  # its pairs are already compared: filter on the rule's bit
        bit = 1 << settings.blocking_rules.index(tuple(rule))
        where = f"where rules & {bit} <> 0"
        n_pairs = scalar(con, f"select count(*) from _mx_compared {where}")
        patterns = con.execute(f"select {gcols}, count(*) as n from _mx_compared {where} group by all").df()
    else:
        n_pairs = block(con, settings, [rule], target="_mx_session_pairs")
        compare_pairs(con, settings, "_mx_session_pairs", "_mx_session")
        patterns = con.execute(f"select {gcols}, count(*) as n from _mx_session group by all").df()
        con.execute("drop table _mx_session; drop table _mx_session_pairs")
    if n_pairs == 0:  # nothing to learn from: the comparisons are estimated in other sessions
        return {**skipped, "pairs": 0}
    # A comparison no pair of this block can inform (a rule with ``unless_both_have`` pairs no two records that
    # both have an email) is estimated in other sessions: from no evidence EM would return its starting m.
    no_evidence = [c.name for i, c in active if not (patterns[f"g_{i}"] >= 0).any()]
    active = [(i, c) for i, c in active if c.name not in no_evidence]
    if not active:
        return {**skipped, "pairs": n_pairs, "no_evidence": no_evidence}
    lam, m, iterations, converged = _em(patterns, active, u, settings)
    return {
        "rule": list(rule),
        "pairs": n_pairs,
        "match_share": lam,
        "m": m,
        "held_out": [c.name for c in held_out],
        **({"no_evidence": no_evidence} if no_evidence else {}),
        "iterations": iterations,
        "converged": converged,
    }


def _combine(sessions: list[dict], settings: MatchSettings, n_records: int) -> tuple[dict, float]:
    """Average each comparison's m over the sessions that estimated it; λ over all pairs."""
    m: dict[str, dict[int, float]] = {}
    for c in settings.comparisons:
        estimates = [s["m"][c.name] for s in sessions if c.name in s["m"]]
        if estimates:
            m[c.name] = {lvl: float(np.mean([e[lvl] for e in estimates])) for lvl in range(c.top + 1)}
        else:  # held out in every session: a conservative prior
            m[c.name] = {lvl: (0.9 if lvl == c.top else 0.1 / c.top) for lvl in range(c.top + 1)}
    total_pairs = n_records * (n_records - 1) / 2
    by_name = {c.name: c for c in settings.comparisons}
    log_lams = []
    for s in sessions:
        if not s["m"]:
            continue
        captured = float(np.prod([m[name][by_name[name].top] for name in s["held_out"]])) if s["held_out"] else 1.0
        matches = s["match_share"] * s["pairs"] / max(captured, 1e-9)
        if matches > 0 and total_pairs > 0:
            log_lams.append(math.log(min(matches / total_pairs, 0.5)))
    lam = math.exp(float(np.mean(log_lams))) if log_lams else 1e-4
    return m, lam


def _lambda_from_candidates(
    con: duckdb.DuckDBPyConnection, settings: MatchSettings, m: dict, u: dict, start: float, n_records: int
) -> float:
    """λ = expected matches among the candidate pairs / all pairs, iterated to a fixed point (m, u fixed)."""
    total_pairs = n_records * (n_records - 1) / 2
    gammas = [f"g_{i}" for i in range(len(settings.comparisons))]
    if total_pairs <= 0 or not gammas:
        return start
    patterns = con.execute(f"select {', '.join(gammas)}, count(*) as n from _mx_compared group by all").df()
    if patterns.empty:
        return start
    log_bf = _log_bayes_factors(patterns, settings, m, u)
    counts = patterns["n"].to_numpy(dtype=float)
    lam = min(max(start, 1e-12), 0.5)
    for _ in range(500):
        p = _posterior(lam, log_bf)
        new = min(max(float((counts * p).sum() / total_pairs), 1e-12), 0.5)
        if abs(new - lam) <= 1e-6 * lam:
            return new
        lam = new
    return lam


def fit(con: duckdb.DuckDBPyConnection, settings: MatchSettings) -> FittedModel:
    """Block, compare and estimate the model; leaves ``_mx_compared`` (candidate pairs with levels)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    add_term_frequencies(con, settings)
    n_pairs = block(con, settings)
    compare_pairs(con, settings, "_mx_pairs", "_mx_compared")
    con.execute("drop table _mx_pairs")
    timings["block_and_compare"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    u, random_patterns = estimate_u(con, settings)
    timings["estimate_u"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_records = scalar(con, "select count(*) from _mx_records")
    for round_ in range(settings.u_rounds + 1):
        sessions = [_session(con, settings, rule, u) for rule in (settings.training_rules or settings.blocking_rules)]
        m, lam_sessions = _combine(sessions, settings, n_records)
        lam = _lambda_from_candidates(con, settings, m, u, lam_sessions, n_records)
        if round_ == settings.u_rounds:
            break
        # The random pairs hold a share λ of matches: where records have many duplicates they are most of the
        # pairs agreeing on rare levels, and u overstates how often non-matches agree there. Weighting each
        # random pair by its posterior probability of being a non-match removes them.
        weights = random_patterns["n"].to_numpy(dtype=float) * (
            1 - _posterior(lam, _log_bayes_factors(random_patterns, settings, m, u))
        )
        u = _level_shares(random_patterns, settings, weights)
    timings["em"] = time.perf_counter() - t0
    return FittedModel(
        lam=lam,
        m=m,
        u=u,
        lam_sessions=lam_sessions,
        iterations=max([s["iterations"] for s in sessions] or [0]),
        converged=all(s["converged"] for s in sessions),
        candidate_pairs=n_pairs,
        sessions=[{k: v for k, v in s.items() if k != "m"} for s in sessions],
        seconds=timings,
    )


def score(
    con: duckdb.DuckDBPyConnection, settings: MatchSettings, model: FittedModel, compared: str, target: str
) -> None:
    """Create ``target(id_l, id_r, ..., match_weight, match_probability, n_informative)``.

    The weight without term frequencies depends only on the pair's levels, so it is computed once per
    distinct level pattern (thousands, where pairs are tens of millions) and joined back; the
    term-frequency adjustment is added from ``tf_i``."""
    gammas = [f"g_{i}" for i in range(len(settings.comparisons))]
    patterns = con.execute(f"select distinct {', '.join(gammas)} from {compared}").df()
    weight = np.full(len(patterns), math.log2(model.lam / (1 - model.lam)))
    for i, c in enumerate(settings.comparisons):
        table = np.array([0.0] + [model.weight(c.name, lvl) for lvl in range(c.top + 1)])  # index = level + 1
        weight += table[patterns[f"g_{i}"].to_numpy(dtype=int) + 1]
    patterns["_mx_weight"] = weight
    patterns["_mx_informative"] = (patterns[gammas] >= 0).sum(axis=1).astype("int32")
    tf_terms, tf_columns = [], []
    for i, c in enumerate(settings.comparisons):
        tf_levels = c.tf_levels()
        if tf_levels:
            # tf_i is null unless the pair is at a level with a term frequency; the adjustment replaces the
            # level's average u by the agreed value's frequency: log2(u_level / tf).
            whens = " ".join(
                f"when {gamma} then log2({model.u[c.name][gamma]!r} / greatest(s.tf_{i}, {settings.min_tf!r}))"
                for gamma, _ in tf_levels
            )
            tf_terms.append(f" + (case when s.tf_{i} is null then 0 else (case s.g_{i} {whens} else 0 end) end)")
            tf_columns.append(f"tf_{i}")
    exclude = f" exclude ({', '.join(tf_columns)})" if tf_columns else ""
    con.register("_mx_patterns", patterns)
    con.execute(
        f"""create or replace temp table {target} as
        select *, 1 / (1 + pow(2, -match_weight)) as match_probability
        from (select s.*{exclude}, p._mx_weight{"".join(tf_terms)} as match_weight, p._mx_informative as n_informative
              from {compared} s join _mx_patterns p using ({", ".join(gammas)}))"""
    )
    con.unregister("_mx_patterns")


def fit_and_score(con: duckdb.DuckDBPyConnection, settings: MatchSettings) -> FittedModel:
    """Fit on the blocked pairs and leave them scored in ``_mx_scored``."""
    model = fit(con, settings)
    t0 = time.perf_counter()
    score(con, settings, model, "_mx_compared", "_mx_scored")
    con.execute("drop table _mx_compared")
    model.seconds["score"] = time.perf_counter() - t0
    return model
