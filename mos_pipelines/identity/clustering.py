"""Clustering scored pairs into entities without chaining.

Connected components at a threshold merge two groups through a single link, so one wrong link (or a
path of weak ones) glues unrelated people together. Here a merge must be backed by the pairs *between*
the two groups:

1. Candidate groups are the connected components of links with probability ≥ ``candidate_threshold``.
2. Inside each component small enough (≤ ``max_complete_component``), every pair not scored yet is
   scored too, so the evidence between any two groups is complete (including evidence *against*).
3. Average-linkage agglomeration: repeatedly merge the two groups with the highest mean match
   weight (log2 odds, clipped to ±``weight_clip`` bits) over their *informative* cross pairs (pairs
   where at least one attribute is present on both sides), provided that mean is ≥ ``merge_weight``
   and at least one cross pair is ≥ ``link_threshold`` likely. A weak bridge between two tight groups
   has a low mean and is not merged. The mean is over weights, not probabilities, so a pair that
   clearly disagrees (−7 bits) counts against a merge as much as a clear agreement counts for it.

Pairs with no attribute in common carry no evidence and neither help nor veto a merge.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class ClusterSettings:
    """The defaults are those of ``config/identity.yaml`` (see docs/DECISIONS.md, "Identity settings as data")."""

    link_threshold: float = 0.8  # a merge needs at least one cross pair this likely
    merge_weight: float = -4.0  # ... and this mean match weight (bits) over informative cross pairs
    weight_clip: float = 10.0  # a pair's weight counts at most this many bits either way in that mean
    candidate_threshold: float = 0.5  # links that define candidate components
    max_complete_component: int = 200  # above this size only the scored pairs are used

    @property
    def link_weight(self) -> float:
        return float(np.log2(self.link_threshold / (1 - self.link_threshold)))


def clipped_weights(prob: np.ndarray, settings: ClusterSettings) -> np.ndarray:
    """Match weights (log2 odds) of probabilities, clipped to ±``weight_clip``."""
    p = np.clip(np.asarray(prob, dtype=float), 1e-15, 1 - 1e-15)
    return np.clip(np.log2(p / (1 - p)), -settings.weight_clip, settings.weight_clip)


def candidate_components(n_records: int, id_l: np.ndarray, id_r: np.ndarray) -> np.ndarray:
    """Component label per record (0..n-1 indices) of the candidate link graph."""
    graph = coo_matrix((np.ones(len(id_l), dtype=np.int8), (id_l, id_r)), shape=(n_records, n_records))
    _, labels = connected_components(graph, directed=False)
    return labels


def average_linkage(pairs: pd.DataFrame, settings: ClusterSettings) -> dict[int, int]:
    """Agglomerate records linked by ``pairs(id_l, id_r, p)`` (informative pairs only).

    Returns record → cluster representative (the smallest record id in the cluster) for every record
    that appears in ``pairs``.
    """
    id_l, id_r, prob = pairs["id_l"].to_numpy(), pairs["id_r"].to_numpy(), pairs["p"].to_numpy()
    # A group whose pairs are all strong ends as one cluster whatever the merge order (every merge of
    # two neighbouring parts passes both thresholds), so it is settled here, vectorised; only groups
    # holding a weak pair go through the agglomeration below, which is plain Python. At scale most
    # groups are a few true duplicates with strong pairs only.
    ids, index = np.unique(np.concatenate([id_l, id_r]), return_inverse=True)
    left, right = index[: len(id_l)], index[len(id_l) :]
    labels = candidate_components(len(ids), left, right)
    weakest = np.full(labels.max() + 1 if len(labels) else 0, np.inf)
    np.minimum.at(weakest, labels[left], clipped_weights(prob, settings))
    settled = weakest[labels] >= max(settings.merge_weight, settings.link_weight)  # per record
    smallest = np.full(len(weakest), np.iinfo(np.int64).max)
    np.minimum.at(smallest, labels, ids)
    result: dict[int, int] = dict(zip(ids[settled].tolist(), smallest[labels[settled]].tolist()))
    todo = ~settled[left]
    result.update(agglomerate(id_l[todo], id_r[todo], prob[todo], settings))
    return result


def agglomerate(id_l: np.ndarray, id_r: np.ndarray, prob: np.ndarray, settings: ClusterSettings) -> dict[int, int]:
    """The average-linkage agglomeration itself (a heap of candidate merges), record → representative."""
    members: dict[int, list[int]] = {}
    stats: dict[int, dict[int, list[float]]] = defaultdict(dict)  # a -> b -> [sum weight, count, max weight]
    link_weight = settings.link_weight
    for a, b, p in zip(id_l, id_r, clipped_weights(prob, settings)):
        a, b, p = int(a), int(b), float(p)
        members.setdefault(a, [a])
        members.setdefault(b, [b])
        entry = stats[a].get(b)
        if entry is None:
            entry = [0.0, 0, -np.inf]
            stats[a][b] = entry
            stats[b][a] = entry
        entry[0] += p
        entry[1] += 1
        entry[2] = max(entry[2], p)

    heap: list[tuple[float, int, int]] = []

    def push(a: int, b: int) -> None:
        total, count, best = stats[a][b]
        mean = total / count
        if mean >= settings.merge_weight and best >= link_weight:
            heapq.heappush(heap, (-mean, min(a, b), max(a, b)))

    for a, neighbours in stats.items():
        for b in neighbours:
            if a < b:
                push(a, b)

    alive = set(members)
    while heap:
        neg_mean, a, b = heapq.heappop(heap)
        if a not in alive or b not in alive or b not in stats[a]:
            continue
        total, count, best = stats[a][b]
        if abs(total / count + neg_mean) > 1e-12:
            continue  # stale entry: the pair's statistics changed since it was pushed
        keep, gone = (a, b) if len(members[a]) >= len(members[b]) else (b, a)
        members[keep].extend(members.pop(gone))
        alive.discard(gone)
        del stats[keep][gone]
        for c, entry in stats.pop(gone).items():
            if c == keep:
                continue
            del stats[c][gone]
            mine = stats[keep].get(c)
            if mine is None:
                stats[keep][c] = entry
                stats[c][keep] = entry
            else:
                mine[0] += entry[0]
                mine[1] += entry[1]
                mine[2] = max(mine[2], entry[2])
            push(keep, c)
    return {r: min(rs) for rs in members.values() for r in rs}
