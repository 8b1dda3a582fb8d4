"""AUC with a bootstrap interval: how much of a lookalike figure is the model and how much the sample.

A held-out seed of a few dozen people ranks among a few hundred population members: its AUC moves by
±0.1 from one draw of the holdout to the next. Every fit reports a stratified bootstrap interval
(seed and population resampled separately, so both keep their sizes), and the same resamples give the
interval of the gap to the true propensity's AUC on the simulator (paired: both rankings are scored on
the same resampled people).

Each resample is a multinomial reweighting of the rows: one sort per ranking, then a weighted
Mann–Whitney count (cumulative sums). Large evaluation sets are first subsampled to ``max_rows`` per
class (a fixed random subset), which only widens the interval; at that size it is already narrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class _Ranking:
    """A score vector sorted once: the row order and where each group of tied scores starts."""

    order: np.ndarray
    group_starts: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray) -> _Ranking:
        order = np.argsort(scores, kind="mergesort")
        ordered = scores[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        return cls(order, starts)

    def auc(self, positive_weights: np.ndarray, negative_weights: np.ndarray) -> np.ndarray:
        """Weighted AUC for each row of the weight matrices (resamples × rows); ties count one half."""
        pos = np.add.reduceat(positive_weights[:, self.order], self.group_starts, axis=1, dtype=np.float64)
        neg = np.add.reduceat(negative_weights[:, self.order], self.group_starts, axis=1, dtype=np.float64)
        below = np.cumsum(neg, axis=1) - neg
        wins = (pos * (below + 0.5 * neg)).sum(axis=1)
        return wins / (pos.sum(axis=1) * neg.sum(axis=1))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Plain AUC (equal to scikit-learn's ``roc_auc_score``)."""
    labels = np.asarray(labels, dtype=bool)
    weights = np.ones((1, len(labels)))
    return float(_Ranking.of(np.asarray(scores, dtype=float)).auc(weights * labels, weights * ~labels)[0])


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def __str__(self) -> str:
        return f"[{self.low:.3f}, {self.high:.3f}]"


def bootstrap_auc(
    labels: np.ndarray,
    scores: np.ndarray,
    reference: np.ndarray | None = None,
    resamples: int = 500,
    level: float = 0.95,
    seed: int = 0,
    max_rows: int = 20_000,
    chunk: int = 50,
) -> tuple[Interval, Interval | None]:
    """Percentile intervals of the AUC of ``scores`` and, with ``reference`` (e.g. the true propensity),
    of ``AUC(reference) - AUC(scores)`` over the same stratified resamples."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    keep = np.sort(
        np.concatenate(
            [
                rows if len(rows) <= max_rows else rng.choice(rows, size=max_rows, replace=False)
                for rows in (np.flatnonzero(labels), np.flatnonzero(~labels))
            ]
        )
    )
    labels, scores = labels[keep], scores[keep]
    positives, negatives = np.flatnonzero(labels), np.flatnonzero(~labels)
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError("an AUC needs at least one row of each class")
    rankings = [_Ranking.of(scores)]
    if reference is not None:
        rankings.append(_Ranking.of(np.asarray(reference, dtype=float)[keep]))
    results: list[np.ndarray] = []
    n = len(labels)
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        pos_w = np.zeros((k, n), dtype=np.float32)
        neg_w = np.zeros((k, n), dtype=np.float32)
        pos_w[:, positives] = rng.multinomial(len(positives), np.full(len(positives), 1 / len(positives)), size=k)
        neg_w[:, negatives] = rng.multinomial(len(negatives), np.full(len(negatives), 1 / len(negatives)), size=k)
        results.append(np.stack([r.auc(pos_w, neg_w) for r in rankings], axis=1))
    draws = np.concatenate(results)
    tail = (1 - level) / 2 * 100
    model = Interval(*(float(v) for v in np.percentile(draws[:, 0], [tail, 100 - tail])))
    if reference is None:
        return model, None
    gap = draws[:, 1] - draws[:, 0]
    return model, Interval(*(float(v) for v in np.percentile(gap, [tail, 100 - tail])))
