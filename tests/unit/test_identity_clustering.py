"""Average-linkage clustering refuses weak bridges that connected components would follow."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from mos_pipelines.identity.clustering import ClusterSettings, average_linkage, candidate_components

SETTINGS = ClusterSettings(link_threshold=0.9, merge_weight=-0.9)  # a mean weight of -0.9 bits: odds 0.35 : 0.65


def pairs(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id_l", "id_r", "p"])


def groups(representative: dict[int, int]) -> set[frozenset[int]]:
    out: dict[int, set[int]] = {}
    for record, rep in representative.items():
        out.setdefault(rep, set()).add(record)
    return {frozenset(g) for g in out.values()}


def test_weak_bridge_between_two_tight_groups_is_not_merged():
    a, b = [0, 1, 2, 3], [4, 5, 6, 7]
    rows = [(x, y, 0.99) for x, y in combinations(a, 2)] + [(x, y, 0.99) for x, y in combinations(b, 2)]
    rows += [(3, 4, 0.95)]  # one strong-looking link across
    rows += [(x, y, 0.01) for x in a for y in b if (x, y) != (3, 4)]  # every other cross pair disagrees
    result = groups(average_linkage(pairs(rows), SETTINGS))
    assert result == {frozenset(a), frozenset(b)}
    # connected components at the same threshold would have chained them into one
    strong = [r for r in rows if r[2] >= 0.9]
    labels = candidate_components(8, np.array([r[0] for r in strong]), np.array([r[1] for r in strong]))
    assert len(set(labels)) == 1


def test_chain_of_links_without_support_does_not_collapse():
    # a-b, b-c, c-d each likely, but the non-adjacent pairs clearly disagree
    rows = [(0, 1, 0.97), (1, 2, 0.93), (2, 3, 0.97), (0, 2, 0.02), (1, 3, 0.02), (0, 3, 0.01)]
    result = groups(average_linkage(pairs(rows), SETTINGS))
    assert frozenset({0, 1, 2, 3}) not in result
    assert {frozenset({0, 1}), frozenset({2, 3})} <= result


def test_records_linked_through_a_third_merge_when_their_own_pair_is_unscored():
    # 0 and 2 share no attribute (no pair scored): only the evidence through 1 counts
    rows = [(0, 1, 0.99), (1, 2, 0.98)]
    assert groups(average_linkage(pairs(rows), SETTINGS)) == {frozenset({0, 1, 2})}


def test_nothing_merges_below_the_link_threshold():
    rows = [(0, 1, 0.85), (1, 2, 0.6)]
    assert groups(average_linkage(pairs(rows), SETTINGS)) == {frozenset({0}), frozenset({1}), frozenset({2})}


def test_representative_is_the_smallest_record_id():
    rep = average_linkage(pairs([(5, 9, 0.99), (3, 9, 0.99), (3, 5, 0.99)]), SETTINGS)
    assert set(rep.values()) == {3}


def test_settling_all_strong_groups_up_front_gives_the_agglomeration_result():
    """The vectorised shortcut (groups with only strong pairs are one cluster) must not change any result."""
    from mos_pipelines.identity.clustering import agglomerate

    rng = np.random.default_rng(7)
    rows: list[tuple[int, int, float]] = []
    start = 0
    for _ in range(300):
        size = int(rng.integers(2, 7))
        members = range(start, start + size)
        start += size
        weak_group = rng.random() < 0.4
        for a, b in combinations(members, 2):
            if rng.random() < 0.8:  # some pairs uninformative (absent)
                p = float(rng.uniform(0.0, 1.0) if weak_group else rng.uniform(0.9, 1.0))
                rows.append((a, b, p))
    frame = pairs(rows).drop_duplicates(["id_l", "id_r"])
    expected = agglomerate(frame["id_l"].to_numpy(), frame["id_r"].to_numpy(), frame["p"].to_numpy(), SETTINGS)
    result = average_linkage(frame, SETTINGS)
    assert groups(result) == groups(expected)
    assert result == expected
    assert len(groups(result)) < len(set(frame["id_l"]) | set(frame["id_r"]))  # some merges happened


def test_the_shipped_defaults_refuse_a_strong_bridge_and_a_long_chain():
    """At the defaults (config/identity.yaml), one strong link between two tighter groups whose other pairs
    disagree does not merge them, nor does a chain of six whose non-neighbours disagree. (A bridge stronger
    than every pair inside the groups is merged first, and then pulls them together: average linkage is
    greedy, with either mean.)"""
    defaults = ClusterSettings()
    a, b = [0, 1, 2, 3], [4, 5, 6, 7]
    rows = [(x, y, 0.99) for x, y in combinations(a, 2)] + [(x, y, 0.99) for x, y in combinations(b, 2)]
    rows += [(3, 4, 0.95)] + [(x, y, 0.01) for x in a for y in b if (x, y) != (3, 4)]
    assert groups(average_linkage(pairs(rows), defaults)) == {frozenset(a), frozenset(b)}
    chain = [(i, i + 1, 0.97) for i in range(5)] + [(i, j, 0.01) for i, j in combinations(range(6), 2) if j > i + 1]
    assert frozenset(range(6)) not in groups(average_linkage(pairs(chain), defaults))
