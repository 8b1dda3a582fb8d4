"""Identity-resolution evaluation against a known truth, without enumerating record pairs.

Two questions, two measures:

* **Clustered** (cluster-level pairwise) precision / recall / F1 — :func:`evaluate_clusters`. A pair of
  records is *predicted* to match when both are in the same predicted cluster, and *truly* matches when
  both belong to the same true entity. The counts come from the contingency table of predicted cluster ×
  true entity: with ``n_ct`` records in cell (c, t), ``a_c`` in predicted cluster c and ``b_t`` in true
  entity t, the true-positive pairs are ``Σ n_ct(n_ct−1)/2``, the predicted pairs ``Σ a_c(a_c−1)/2`` and
  the true pairs ``Σ b_t(b_t−1)/2``. This is O(records) and exact, so it runs at millions of records.
  This is what benchmarks call "clustered P/R/F1": it is the measure that punishes chaining, since one
  wrong edge that joins two clusters of 50 records adds 2,500 wrong pairs.

* **Pairwise** precision / recall / F1 of an explicit list of predicted matched pairs (edges, e.g. the
  scored pairs above a threshold, before clustering) — :func:`evaluate_edges`. Recall is counted against
  *all* true pairs, so true pairs that blocking never compared are misses.

Alongside: largest predicted cluster against the largest true entity, the number of predicted clusters and
true entities, over-merges (predicted clusters holding records of more than one true entity) and
under-merges (true entities split over more than one predicted cluster), each with how many records they
hold.

Records are identified by any hashable key (a string, or a ``(source, source_record_id)`` tuple as
:func:`load_truth_csv` produces); prediction and truth must use the same form. **A record present on one
side only is reported** (``only_in_predicted`` / ``only_in_truth``, with a few example keys) **and treated
as a singleton on the side it is missing from**: a predicted record absent from the truth is its own true
entity (so every pair it is predicted in is a false positive), and a true record absent from the
prediction is its own predicted cluster (so every true pair it is in is a miss).

Conventions for empty denominators: precision is 1.0 when nothing is predicted to match, recall is 1.0
when nothing truly matches, and F1 is ``2·TP / (predicted + true)`` — 1.0 when both are zero, 0.0 when
exactly one is.

With ``sources`` (a source label per record, or the name of the key's index level holding it, e.g.
``"source"``), the same measures are also computed over **cross-source pairs only** ("linkage" metrics:
pairs whose two records come from different sources), which is how a two-file link such as FEBRL4 is
usually scored. A record without a source label counts as its own source.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

__all__ = [
    "TRUTH_COLUMNS",
    "ClusterEvaluation",
    "EdgeEvaluation",
    "IdentityEvaluation",
    "PairScores",
    "TruthFileError",
    "evaluate",
    "evaluate_clusters",
    "evaluate_edges",
    "load_truth_csv",
]

TRUTH_COLUMNS = ("source", "source_record_id", "true_entity_id")
EXAMPLES = 5  # example keys kept for records present on one side only

Assignments = Union[pd.Series, Mapping[Hashable, Hashable]]
Sources = Union[pd.Series, Mapping[Hashable, Hashable], str, None]


class TruthFileError(ValueError):
    """A truth CSV that cannot be used; the message names the file, and the line and field when known."""


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PairScores:
    """Precision, recall and F1 over record pairs, with the counts they come from."""

    true_positives: int
    predicted_pairs: int
    true_pairs: int
    precision: float
    recall: float
    f1: float

    @classmethod
    def from_counts(cls, true_positives: int, predicted_pairs: int, true_pairs: int) -> PairScores:
        tp, pred, true = int(true_positives), int(predicted_pairs), int(true_pairs)
        if not 0 <= tp <= min(pred, true):
            raise ValueError(f"inconsistent pair counts: tp={tp}, predicted={pred}, true={true}")
        precision = tp / pred if pred else 1.0
        recall = tp / true if true else 1.0
        f1 = 2 * tp / (pred + true) if pred + true else 1.0
        return cls(tp, pred, true, precision, recall, f1)

    @property
    def false_positives(self) -> int:
        return self.predicted_pairs - self.true_positives

    @property
    def false_negatives(self) -> int:
        return self.true_pairs - self.true_positives


@dataclass(frozen=True)
class ClusterEvaluation:
    """Predicted clusters against true entities (see the module docstring for definitions)."""

    records: int
    predicted_clusters: int
    true_entities: int
    pairs: PairScores
    largest_predicted_cluster: int
    largest_predicted_cluster_entities: int  # distinct true entities inside the largest predicted cluster
    largest_true_entity: int
    over_merged_clusters: int  # predicted clusters holding records of more than one true entity
    over_merged_records: int  # records in those clusters
    under_merged_entities: int  # true entities split over more than one predicted cluster
    under_merged_records: int  # records of those entities
    only_in_predicted: int
    only_in_truth: int
    only_in_predicted_examples: tuple[Hashable, ...] = ()
    only_in_truth_examples: tuple[Hashable, ...] = ()
    linkage_pairs: PairScores | None = None  # cross-source pairs only, when sources were given

    def as_dict(self) -> dict[str, Any]:
        return _flatten(self, "clustered")

    def to_markdown(self) -> str:
        return IdentityEvaluation(clusters=self).to_markdown()


@dataclass(frozen=True)
class EdgeEvaluation:
    """An explicit list of predicted matched pairs (edges) against the truth."""

    edges: int  # distinct unordered pairs scored
    duplicate_edges: int  # repeated pairs (either orientation) dropped before scoring
    self_edges: int  # pairs of a record with itself, dropped
    edges_with_unknown_records: int  # edges touching a record absent from the truth (false positives)
    pairs: PairScores
    linkage_pairs: PairScores | None = None

    def as_dict(self) -> dict[str, Any]:
        return _flatten(self, "pairwise")

    def to_markdown(self) -> str:
        return IdentityEvaluation(clusters=None, edges=self).to_markdown()


@dataclass(frozen=True)
class IdentityEvaluation:
    """What ``mos identity evaluate`` prints: clustered metrics, plus pairwise metrics when edges were given."""

    clusters: ClusterEvaluation | None
    edges: EdgeEvaluation | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. run label, threshold, seconds

    def as_dict(self) -> dict[str, Any]:
        """A flat dict of JSON-serialisable scalars (for JSON lines and Dagster metadata)."""
        out: dict[str, Any] = dict(self.extra)
        if self.clusters is not None:
            out.update(self.clusters.as_dict())
        if self.edges is not None:
            out.update(self.edges.as_dict())
        return out

    def to_markdown(self) -> str:
        lines = [
            "| measure | precision | recall | F1 | true positive pairs | predicted pairs | true pairs |",
            "|---|---|---|---|---|---|---|",
        ]
        rows: list[tuple[str, PairScores]] = []
        if self.edges is not None:
            rows.append(("pairwise (edges)", self.edges.pairs))
            if self.edges.linkage_pairs is not None:
                rows.append(("pairwise, cross-source only", self.edges.linkage_pairs))
        if self.clusters is not None:
            rows.append(("clustered", self.clusters.pairs))
            if self.clusters.linkage_pairs is not None:
                rows.append(("clustered, cross-source only", self.clusters.linkage_pairs))
        for label, s in rows:
            lines.append(
                f"| {label} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} | {s.true_positives:,} "
                f"| {s.predicted_pairs:,} | {s.true_pairs:,} |"
            )
        out = "\n".join(lines)
        if self.clusters is not None:
            c = self.clusters
            facts = [
                ("records", f"{c.records:,}"),
                ("predicted clusters / true entities", f"{c.predicted_clusters:,} / {c.true_entities:,}"),
                (
                    "largest predicted cluster / largest true entity",
                    f"{c.largest_predicted_cluster:,} / {c.largest_true_entity:,} "
                    f"(the largest predicted cluster holds {c.largest_predicted_cluster_entities:,} true "
                    f"{'entity' if c.largest_predicted_cluster_entities == 1 else 'entities'})",
                ),
                ("over-merged clusters (records in them)", f"{c.over_merged_clusters:,} ({c.over_merged_records:,})"),
                (
                    "under-merged entities (records in them)",
                    f"{c.under_merged_entities:,} ({c.under_merged_records:,})",
                ),
                (
                    "records only in prediction (treated as true singletons)",
                    _with_examples(c.only_in_predicted, c.only_in_predicted_examples),
                ),
                (
                    "records only in truth (treated as predicted singletons)",
                    _with_examples(c.only_in_truth, c.only_in_truth_examples),
                ),
            ]
            out += "\n\n| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in facts)
        if self.edges is not None:
            e = self.edges
            out += (
                f"\n\nEdges: {e.edges:,} distinct pairs scored ({e.duplicate_edges:,} duplicates and "
                f"{e.self_edges:,} self-pairs dropped; {e.edges_with_unknown_records:,} touch records "
                "absent from the truth)."
            )
        return out


def _with_examples(count: int, examples: Sequence[Hashable]) -> str:
    if not count:
        return "0"
    shown = ", ".join(_md_escape(repr(k)) for k in examples)
    return f"{count:,} (e.g. {shown}{', …' if count > len(examples) else ''})"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _flatten(result: ClusterEvaluation | EdgeEvaluation, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in asdict(result).items():
        if name == "pairs":
            out.update({f"{prefix}_{k}": v for k, v in value.items()})
        elif name == "linkage_pairs":
            if value is not None:
                out.update({f"{prefix}_linkage_{k}": v for k, v in value.items()})
        elif name.endswith("_examples"):
            out[f"{prefix}_{name}"] = [
                k if isinstance(k, (str, int, float)) else list(k) if isinstance(k, tuple) else str(k) for k in value
            ]
        else:
            out[f"{prefix}_{name}"] = value
    return out


# ------------------------------------------------------------------------------------------ evaluation


def evaluate(
    predicted: Assignments,
    truth: Assignments,
    *,
    edges: pd.DataFrame | Iterable[tuple[Hashable, Hashable]] | None = None,
    sources: Sources = None,
    extra: Mapping[str, Any] | None = None,
) -> IdentityEvaluation:
    """Clustered metrics of ``predicted`` against ``truth``; pairwise metrics of ``edges`` too when given."""
    clusters = evaluate_clusters(predicted, truth, sources=sources)
    edge_eval = evaluate_edges(edges, truth, sources=sources) if edges is not None else None
    return IdentityEvaluation(clusters=clusters, edges=edge_eval, extra=dict(extra or {}))


def evaluate_clusters(predicted: Assignments, truth: Assignments, *, sources: Sources = None) -> ClusterEvaluation:
    """Cluster-level pairwise P/R/F1 and merge diagnostics, from the predicted × true contingency table.

    ``predicted`` maps record key → predicted cluster id and ``truth`` record key → true entity id (a pandas
    Series indexed by key, or a mapping). Records on one side only are treated as singletons on the other
    (see the module docstring). Runs in O(records) memory and near-linear time; no pairs are enumerated.
    """
    pred = _as_assignments(predicted, "predicted")
    true = _as_assignments(truth, "truth")

    # Position of each predicted record in the truth (-1: absent from the truth).
    pos = true.index.get_indexer(pred.index)
    in_truth = pos >= 0
    covered = np.zeros(len(true), dtype=bool)
    covered[pos[in_truth]] = True
    n_true, n_extra = len(true), int((~in_truth).sum())
    n = n_true + n_extra  # the record universe: every truth record, then the predicted-only ones

    t_codes, t_uniques = pd.factorize(true.to_numpy(), use_na_sentinel=False)
    p_codes, p_uniques = pd.factorize(pred.to_numpy(), use_na_sentinel=False)
    n_true_entities = len(t_uniques)

    t = np.empty(n, dtype=np.int64)
    t[:n_true] = t_codes
    t[n_true:] = n_true_entities + np.arange(n_extra)  # predicted-only records: their own true entity

    p = np.empty(n, dtype=np.int64)
    p[:n_true] = -1
    p[pos[in_truth]] = p_codes[in_truth]
    p[n_true:] = p_codes[~in_truth]
    missing = p < 0  # truth-only records: their own predicted cluster
    p[missing] = len(p_uniques) + np.arange(int(missing.sum()))

    if n == 0:
        raise ValueError("nothing to evaluate: both the prediction and the truth are empty")
    a = np.bincount(p)  # predicted cluster sizes
    b = np.bincount(t)  # true entity sizes
    n_t_max = len(b)
    cells, cell_of_record, n_ct = np.unique(p * n_t_max + t, return_inverse=True, return_counts=True)
    cell_of_record = cell_of_record.reshape(-1)
    cell_p, cell_t = cells // n_t_max, cells % n_t_max

    scores = PairScores.from_counts(_pairs(n_ct), _pairs(a), _pairs(b))

    entities_per_cluster = np.bincount(cell_p, minlength=len(a))
    clusters_per_entity = np.bincount(cell_t, minlength=len(b))
    over = entities_per_cluster > 1
    under = clusters_per_entity > 1
    largest = int(np.argmax(a))

    linkage = None
    if sources is not None:
        s = _source_codes(sources, true.index, pred.index[~in_truth], n)
        linkage = PairScores.from_counts(
            _cross_source_pairs(cell_of_record, s, n_ct),
            _cross_source_pairs(p, s, a),
            _cross_source_pairs(t, s, b),
        )

    return ClusterEvaluation(
        records=n,
        predicted_clusters=len(a),
        true_entities=len(b),
        pairs=scores,
        largest_predicted_cluster=int(a.max()),
        largest_predicted_cluster_entities=int(entities_per_cluster[largest]),
        largest_true_entity=int(b.max()),
        over_merged_clusters=int(over.sum()),
        over_merged_records=int(a[over].sum()),
        under_merged_entities=int(under.sum()),
        under_merged_records=int(b[under].sum()),
        only_in_predicted=n_extra,
        only_in_truth=int((~covered).sum()),
        only_in_predicted_examples=tuple(pred.index[~in_truth][:EXAMPLES]),
        only_in_truth_examples=tuple(true.index[~covered][:EXAMPLES]),
        linkage_pairs=linkage,
    )


def evaluate_edges(
    edges: pd.DataFrame | Iterable[tuple[Hashable, Hashable]],
    truth: Assignments,
    *,
    sources: Sources = None,
) -> EdgeEvaluation:
    """Pairwise P/R/F1 of explicit predicted matched pairs against ``truth``.

    ``edges`` is a DataFrame whose first two columns hold the two record keys of each pair (other columns,
    e.g. match_probability, are ignored — filter before calling), or an iterable of ``(key, key)`` tuples.
    Pairs are unordered: (a, b) and (b, a) count once; self-pairs are dropped. An edge touching a record
    absent from the truth is a false positive (that record is a true singleton). Recall is against all true
    pairs in ``truth``, including pairs the edges never mention.
    """
    true = _as_assignments(truth, "truth")
    left, right = _edge_keys(edges)
    n_true = len(true)

    # Integer codes: truth records 0..n_true-1, then each distinct key absent from the truth.
    li = true.index.get_indexer(left).astype(np.int64)
    ri = true.index.get_indexer(right).astype(np.int64)
    unknown_l, unknown_r = li < 0, ri < 0
    unknown_keys = left[unknown_l].append(right[unknown_r])
    u_codes, u_uniques = pd.factorize(unknown_keys, use_na_sentinel=False)
    k = int(unknown_l.sum())
    li[unknown_l] = n_true + u_codes[:k]
    ri[unknown_r] = n_true + u_codes[k:]
    universe = n_true + len(u_uniques)

    lo, hi = np.minimum(li, ri), np.maximum(li, ri)
    self_pairs = lo == hi
    uniq = np.unique(lo[~self_pairs] * universe + hi[~self_pairs])
    lo, hi = uniq // universe, uniq % universe

    t_codes, t_uniques = pd.factorize(true.to_numpy(), use_na_sentinel=False)
    t_codes = t_codes.astype(np.int64)
    ent = np.concatenate([t_codes, len(t_uniques) + np.arange(len(u_uniques), dtype=np.int64)])
    same = ent[lo] == ent[hi]
    b = np.bincount(t_codes)
    scores = PairScores.from_counts(int(same.sum()), len(uniq), _pairs(b))

    linkage = None
    if sources is not None:
        s = _source_codes(sources, true.index, _index_of_keys(list(u_uniques)), universe)
        cross = s[lo] != s[hi]
        linkage = PairScores.from_counts(
            int((same & cross).sum()), int(cross.sum()), _cross_source_pairs(t_codes, s[:n_true], b)
        )

    return EdgeEvaluation(
        edges=len(uniq),
        duplicate_edges=int((~self_pairs).sum()) - len(uniq),
        self_edges=int(self_pairs.sum()),
        edges_with_unknown_records=int(((lo >= n_true) | (hi >= n_true)).sum()),
        pairs=scores,
        linkage_pairs=linkage,
    )


# ---------------------------------------------------------------------------------------------- truth


def load_truth_csv(path: str | Path) -> pd.Series:
    """Read a truth CSV with columns ``source, source_record_id, true_entity_id`` (the simulator's format).

    Returns a Series of true entity ids (strings) indexed by a ``(source, source_record_id)`` MultiIndex.
    Values are read as text and stripped of surrounding whitespace; extra columns are ignored and fully
    blank lines skipped. A row repeating a record with the same entity is tolerated (kept once). Raises
    :class:`TruthFileError` naming the file — and the line and field — for a missing file or column, an
    empty id, or a record given two different entities. Line numbers count the header as line 1 and assume
    no quoted field spans lines.
    """
    path = Path(path)
    if not path.is_file():
        raise TruthFileError(f"{path}: truth file not found")
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False, encoding="utf-8-sig"
        )
    except pd.errors.EmptyDataError:
        raise TruthFileError(f"{path}: the file is empty; expected a header {','.join(TRUTH_COLUMNS)}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TruthFileError(f"{path}: not a readable CSV: {exc}") from None

    frame.columns = [str(c).strip() for c in frame.columns]
    absent = [c for c in TRUTH_COLUMNS if c not in frame.columns]
    if absent:
        raise TruthFileError(
            f"{path}: missing column{'s' if len(absent) > 1 else ''} {', '.join(repr(c) for c in absent)} "
            f"(header has: {', '.join(repr(c) for c in frame.columns)}; expected {','.join(TRUTH_COLUMNS)})"
        )

    data = frame[list(TRUTH_COLUMNS)].fillna("")
    data = data.apply(lambda col: col.str.strip())
    line = np.arange(len(frame)) + 2  # header is line 1
    blank = frame.fillna("").apply(lambda col: col.str.strip()).eq("").all(axis=1).to_numpy()
    data, line = data[~blank], line[~blank]

    empty = data.eq("").to_numpy()
    if empty.any():
        i = int(np.argmax(empty.any(axis=1)))  # the first offending line, then its first empty field
        column = TRUTH_COLUMNS[int(np.argmax(empty[i]))]
        raise TruthFileError(f"{path}: line {line[i]}: field {column!r} is empty{_row_context(data.iloc[i], column)}")

    key_cols = ["source", "source_record_id"]
    repeated = data.duplicated(key_cols, keep=False).to_numpy()
    if repeated.any():
        dups = data[repeated].assign(_line=line[repeated])
        conflicting = dups.groupby(key_cols, sort=False)["true_entity_id"].transform("nunique").to_numpy() > 1
        if conflicting.any():
            bad = dups[conflicting]
            first_key = tuple(bad.iloc[0][key_cols])
            same_key = bad[(bad["source"] == first_key[0]) & (bad["source_record_id"] == first_key[1])]
            first = same_key.iloc[0]
            other = same_key[same_key["true_entity_id"] != first["true_entity_id"]].iloc[0]
            raise TruthFileError(
                f"{path}: line {other['_line']}: field 'true_entity_id': record (source={first_key[0]!r}, "
                f"source_record_id={first_key[1]!r}) is given entity {other['true_entity_id']!r} here but "
                f"{first['true_entity_id']!r} on line {first['_line']}"
            )
        data = data.drop_duplicates(key_cols)

    if data.empty:
        raise TruthFileError(f"{path}: no records (only a header)")
    index = pd.MultiIndex.from_frame(data[key_cols])
    return pd.Series(data["true_entity_id"].to_numpy(), index=index, name="true_entity_id")


def _row_context(row: pd.Series, skip: str) -> str:
    known = [f"{c}={row[c]!r}" for c in TRUTH_COLUMNS if c != skip and row[c] != ""]
    return f" ({', '.join(known)})" if known else ""


# -------------------------------------------------------------------------------------------- helpers


def _pairs(sizes: np.ndarray) -> int:
    """Σ n(n−1)/2, exactly (Python int, no overflow)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return int((sizes * (sizes - 1) // 2).sum(dtype=np.int64)) if sizes.size else 0


def _cross_source_pairs(group: np.ndarray, source: np.ndarray, group_sizes: np.ndarray) -> int:
    """Pairs inside groups whose two records have different sources: all pairs − same-source pairs."""
    if group.size == 0:
        return 0
    n_s = int(source.max()) + 1
    _, within = np.unique(group.astype(np.int64) * n_s + source, return_counts=True)
    return _pairs(group_sizes) - _pairs(within)


def _as_assignments(values: Assignments, side: str) -> pd.Series:
    if isinstance(values, pd.DataFrame):
        raise TypeError(
            f"{side}: expected a Series or mapping of record key → id, got a DataFrame "
            "(index it by the record key and select the id column)"
        )
    series = values if isinstance(values, pd.Series) else pd.Series(dict(values), dtype=object)
    nulls = series.isna().to_numpy()
    if nulls.any():
        examples = ", ".join(repr(k) for k in series.index[nulls][:EXAMPLES])
        raise ValueError(f"{side}: {int(nulls.sum()):,} record(s) have no id (e.g. {examples})")
    if not series.index.is_unique:
        dup = series.index[series.index.duplicated()]
        examples = ", ".join(repr(k) for k in dup.unique()[:EXAMPLES])
        raise ValueError(
            f"{side}: {len(dup):,} duplicated record key(s) (e.g. {examples}); each record must have exactly one id"
        )
    return series


def _edge_keys(edges: pd.DataFrame | Iterable[tuple[Hashable, Hashable]]) -> tuple[pd.Index, pd.Index]:
    if isinstance(edges, pd.DataFrame):
        if edges.shape[1] < 2:
            raise ValueError("edges: a DataFrame needs at least two columns (left key, right key)")
        return pd.Index(edges.iloc[:, 0].to_numpy()), pd.Index(edges.iloc[:, 1].to_numpy())
    pairs = list(edges)
    for i, pair in enumerate(pairs):
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ValueError(f"edges: item {i} is {pair!r}, not a (left key, right key) tuple")
    left = [p[0] for p in pairs]
    right = [p[1] for p in pairs]
    return _index_of_keys(left), _index_of_keys(right)


def _index_of_keys(keys: list[Hashable]) -> pd.Index:
    if keys and isinstance(keys[0], tuple):
        return pd.MultiIndex.from_tuples(keys)
    return pd.Index(keys, dtype=object)


def _source_codes(sources: Sources, true_index: pd.Index, extra_index: pd.Index, n: int) -> np.ndarray:
    """Integer source code for each record of the universe (truth records, then extras); unknown → unique."""
    if isinstance(sources, str):
        if sources not in list(true_index.names):
            raise ValueError(
                f"sources={sources!r}: the truth's record keys have no index level of that name "
                f"(levels: {list(true_index.names)})"
            )
        position = list(true_index.names).index(sources)
        parts = [np.asarray(true_index.get_level_values(position), dtype=object)]
        if len(extra_index):
            if extra_index.nlevels != true_index.nlevels:
                raise ValueError(
                    f"sources={sources!r}: predicted record keys have {extra_index.nlevels} "
                    f"level(s), the truth's {true_index.nlevels}"
                )
            # Same level by name when named, else by position (keys built from plain tuples are unnamed).
            where = list(extra_index.names).index(sources) if sources in list(extra_index.names) else position
            parts.append(np.asarray(extra_index.get_level_values(where), dtype=object))
        labels = pd.Series(np.concatenate(parts), dtype=object)
    else:
        mapping = sources if isinstance(sources, pd.Series) else pd.Series(dict(sources), dtype=object)
        if not mapping.index.is_unique:
            raise ValueError("sources: duplicated record keys")
        universe = true_index.append(extra_index) if len(extra_index) else true_index
        labels = pd.Series(mapping.reindex(universe).to_numpy(), dtype=object)
    codes, uniques = pd.factorize(labels, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    unknown = codes < 0
    codes[unknown] = len(uniques) + np.arange(int(unknown.sum()))
    if len(codes) != n:
        raise AssertionError("source codes do not cover the record universe")
    return codes
