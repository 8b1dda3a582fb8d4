"""The relationship graph against the simulator's truth, run by hand on a built MOS_HOME (never a timed test).

    MOS_HOME=/tmp/x .venv/bin/python benchmarks/relationships_bench.py

Customers are tied to the simulator's people through their CRM records (truth/identity_truth.csv; a customer made
of records of several people takes the most frequent). ``colleague``: a pair is true when both people have the
same account_id in truth/people.csv; recall over the true pairs among customers that have such a person, at
accounts within the graph's size cap. ``works_at``: customers whose account holds mostly people of their true
account. ``former_colleague``: the simulator moves nobody between companies, so every such edge is false.
``reports_to``, ``mentioned_with``, ``introduced_by``: no truth in the simulator; counted only. Appends a line to
benchmarks/results/relationships.jsonl.
"""

from __future__ import annotations

import datetime
import json
import os
from collections import Counter
from itertools import combinations
from pathlib import Path

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    home = Path(os.environ["MOS_HOME"])
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    edges = con.execute("select * from marts.customer_relationships").df()
    nodes = con.execute(
        "select customer_id, source_system, source_record_id from marts.dim_customer_identity_map "
        "where node_type = 'crm'"
    ).df()
    truth = pd.read_csv(home / "truth" / "identity_truth.csv", dtype=str)
    people = pd.read_csv(home / "truth" / "people.csv", dtype=str)[["person_id", "account_id"]]
    joined = nodes.merge(truth, left_on=["source_system", "source_record_id"], right_on=["source", "source_record_id"])
    person = joined.groupby("customer_id")["true_entity_id"].agg(lambda s: Counter(s).most_common(1)[0][0])
    account = person.map(people.set_index("person_id")["account_id"]).dropna()

    works = edges[edges["relationship"] == "works_at"]
    members = works.assign(true_account=works["source_id"].map(account)).dropna(subset=["true_account"])
    majority = members.groupby("target_id")["true_account"].agg(lambda s: Counter(s).most_common(1)[0][0])
    works_ok = (members["true_account"] == members["target_id"].map(majority)).mean()

    col = edges[edges["relationship"] == "colleague"]
    pairs = {tuple(sorted(p)) for p in zip(col["source_id"], col["target_id"], strict=True)}
    scored = [p for p in pairs if p[0] in account.index and p[1] in account.index]
    tp = sum(account[a] == account[b] for a, b in scored)
    sizes = works.groupby("target_id").size()
    capped = set(works[works["target_id"].map(sizes) <= 50]["source_id"]) & set(account.index)
    by_account: dict[str, list[str]] = {}
    for cid in sorted(capped):
        by_account.setdefault(account[cid], []).append(cid)
    true_pairs = {tuple(sorted(p)) for m in by_account.values() for p in combinations(m, 2)}
    recall = len(true_pairs & pairs) / len(true_pairs) if true_pairs else 1.0
    precision = tp / len(scored) if scored else 1.0
    counts = edges["relationship"].value_counts().to_dict()
    print(f"edges {len(edges)}: {counts}")
    print(f"works_at: {len(members)} customers with a true person, {works_ok:.3f} in their true account's majority")
    print(
        f"colleague: precision {precision:.3f} ({tp}/{len(scored)}), recall {recall:.3f} "
        f"({len(true_pairs & pairs)}/{len(true_pairs)})"
    )
    print(f"former_colleague: {counts.get('former_colleague', 0)} edges, all false (the simulator moves nobody)")
    record = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "home": str(home),
        "load": os.getloadavg()[0],
        "edges": counts,
        "works_at_majority": round(float(works_ok), 4),
        "colleague": {"precision": round(precision, 4), "recall": round(recall, 4), "pairs": len(pairs)},
    }
    with (ROOT / "benchmarks" / "results" / "relationships.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
