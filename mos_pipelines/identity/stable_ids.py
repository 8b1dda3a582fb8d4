"""Customer ids that survive re-runs, merges and splits.

Clustering says which identity nodes belong together *now*; this module decides which ``customer_id``
each cluster carries, given what every node carried before:

- a cluster whose nodes never had an id gets a new one, derived from its smallest node key (so a
  first build on the same data always yields the same ids);
- when clusters merge, the surviving id is the **oldest** of the ids involved (first assigned
  earliest; ties by id);
- when a cluster splits, each previous id stays with the part holding **most** of its former nodes
  (ties: the part with the smallest node key); the other parts take their next oldest unclaimed id,
  or a new one;
- nothing changes for a node whose cluster kept its id, so re-running on the same data changes nothing.

The output is the list of changes (``assigned`` for new nodes, ``merged`` / ``split`` for moves),
which the ``fct_customer_id_changes`` model appends; the current map is the latest change per node.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from mos_pipelines.gcpause import with_collector_paused

ID_PREFIX = "cus_"


@dataclass(frozen=True)
class Assignment:
    """The id every node carries after this run, and what changed."""

    current: pd.DataFrame  # node_key, customer_id, first_assigned_run (run of the id's creation)
    changes: pd.DataFrame  # node_key, customer_id, previous_customer_id, change


def new_customer_id(seed_key: str, taken: set[str]) -> str:
    """A deterministic id from a node key, avoiding ids already in use."""
    salt = 0
    while True:
        digest = hashlib.sha256(f"{seed_key}#{salt}".encode() if salt else seed_key.encode()).hexdigest()
        candidate = ID_PREFIX + digest[:16]
        if candidate not in taken:
            return candidate
        salt += 1


@with_collector_paused
def assign_customer_ids(clusters: pd.DataFrame, previous: pd.DataFrame, run: int) -> Assignment:
    """Assign ids to ``clusters(node_key, cluster_key)`` given ``previous(node_key, customer_id, id_created_run)``.

    ``id_created_run`` orders ids by age (smaller = older); ``run`` is this run's number.

    A cluster whose nodes all carried one id that no other cluster's node carried keeps it (the rules above give
    it nothing else, and it takes nothing from another cluster): only the other clusters go through the rules. On a
    day's run that is almost every cluster (issue 20: 7 of the id log's 8.5 s at 100k were the rules over all).
    """
    # Keys as objects on both sides: an empty frame (no records yet, no history yet) has no dtype to agree on.
    clusters = clusters[["node_key", "cluster_key"]].drop_duplicates("node_key").astype(object)
    prev = previous[["node_key", "customer_id", "id_created_run"]].drop_duplicates("node_key")
    prev = prev.astype({"node_key": object, "customer_id": object})
    joined = clusters.merge(prev, on="node_key", how="left")
    steady = _steady(joined)
    if not steady.any():
        return _assign(clusters, prev, run)
    kept = joined[steady]
    rest = _assign(clusters[~clusters["node_key"].isin(set(kept["node_key"]))], prev, run)
    age = prev.drop_duplicates("customer_id").set_index("customer_id")["id_created_run"]
    kept = kept.assign(id_created_run=kept["customer_id"].map(age))[["node_key", "customer_id", "id_created_run"]]
    current = pd.concat([rest.current, kept], ignore_index=True)
    changes = rest.changes
    if changes.empty:  # no clusters left for the rules: the types they give, which no rows can tell
        changes = changes.astype({"node_key": object, "customer_id": object, "previous_customer_id": object})
        changes = changes.astype({"change": "string"})
    return Assignment(current=current.sort_values("node_key").reset_index(drop=True), changes=changes)


def _steady(joined: pd.DataFrame) -> pd.Series:
    """The rows of ``joined`` (node_key, cluster_key, customer_id: the node's previous id or null) whose cluster
    keeps its id without the rules: every node of the cluster carried one and the same id, and no node of another
    cluster carried it."""
    cluster = pd.factorize(joined["cluster_key"])[0]
    ids, _ = pd.factorize(joined["customer_id"])  # -1: no previous id
    frame = pd.DataFrame({"cluster": cluster, "id": ids})
    per_cluster = frame.groupby("cluster")["id"].agg(["min", "max"])
    one_id = (per_cluster["min"] == per_cluster["max"]) & (per_cluster["min"] >= 0)
    clusters_per_id = frame[frame["id"] >= 0].groupby("id")["cluster"].nunique()
    alone = frame["id"].map(clusters_per_id).eq(1)
    return pd.Series(frame["cluster"].map(one_id).to_numpy() & alone.to_numpy(), index=joined.index)


def _assign(clusters: pd.DataFrame, prev: pd.DataFrame, run: int) -> Assignment:
    """The rules of the module docstring over ``clusters``; ``prev`` holds every previous id (their ages, and the
    ids a new one must not repeat)."""
    age = prev.drop_duplicates("customer_id").set_index("customer_id")["id_created_run"].to_dict()

    joined = clusters.merge(prev, on="node_key", how="left")
    # the smallest node key per cluster by sorting (a groupby min over object keys runs in Python, group by group)
    smallest_key = clusters.sort_values("node_key").drop_duplicates("cluster_key").set_index("cluster_key")["node_key"]

    # Owner of each previous id: the cluster holding most of its former nodes (ties: smallest node key).
    held = (
        joined.dropna(subset=["customer_id"]).groupby(["customer_id", "cluster_key"]).size().rename("n").reset_index()
    )
    held["min_key"] = held["cluster_key"].map(smallest_key)
    held = held.sort_values(["customer_id", "n", "min_key"], ascending=[True, False, True])
    owner = held.drop_duplicates("customer_id").set_index("customer_id")["cluster_key"]

    # Each cluster keeps the oldest id it owns; clusters owning none take their next oldest unclaimed id.
    candidates = held.assign(age=held["customer_id"].map(age)).sort_values(["cluster_key", "age", "customer_id"])
    chosen: dict[str, str] = {}
    owned = candidates[candidates["customer_id"].map(owner) == candidates["cluster_key"]]
    chosen.update(owned.drop_duplicates("cluster_key").set_index("cluster_key")["customer_id"].to_dict())
    claimed = set(chosen.values())
    # the clusters owning no id, in key order: each takes the oldest id no cluster has claimed before it
    unowned = candidates[~candidates["cluster_key"].isin(set(chosen))]
    for _, group in unowned.groupby("cluster_key", sort=True):
        cluster_key = group["cluster_key"].iloc[0]
        spare = [c for c in group["customer_id"] if c not in claimed]
        if spare:
            chosen[cluster_key] = spare[0]
            claimed.add(spare[0])

    taken = set(age) | claimed
    created: dict[str, int] = {}
    smallest = smallest_key.to_dict()
    for cluster_key in sorted(set(clusters["cluster_key"]) - set(chosen), key=smallest.__getitem__):
        customer_id = new_customer_id(smallest[cluster_key], taken)
        taken.add(customer_id)
        chosen[cluster_key] = customer_id
        created[customer_id] = run

    joined["new_customer_id"] = joined["cluster_key"].map(chosen)
    joined["id_created_run"] = joined["new_customer_id"].map(lambda c: age.get(c, created.get(c, run)))
    moved = joined["customer_id"].notna() & (joined["customer_id"] != joined["new_customer_id"])
    # A move is a merge when the old id survives in some cluster (its nodes were absorbed), else a split.
    survivors = set(chosen.values())
    change = pd.Series(pd.NA, index=joined.index, dtype="string")
    change[joined["customer_id"].isna()] = "assigned"
    change[moved & joined["customer_id"].isin(survivors)] = "split"
    change[moved & ~joined["customer_id"].isin(survivors)] = "merged"
    changes = joined.assign(change=change)[change.notna()]
    changes = changes.rename(columns={"customer_id": "previous_customer_id", "new_customer_id": "customer_id"})
    current = joined.rename(columns={"new_customer_id": "cid"})[["node_key", "cid", "id_created_run"]]
    return Assignment(
        current=current.rename(columns={"cid": "customer_id"}).sort_values("node_key").reset_index(drop=True),
        changes=changes[["node_key", "customer_id", "previous_customer_id", "change"]]
        .sort_values("node_key")
        .reset_index(drop=True),
    )
