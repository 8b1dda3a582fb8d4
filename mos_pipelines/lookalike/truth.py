"""The simulator's true propensity per customer, to score lookalike rankings against the truth."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mos_pipelines.identity.evaluation import load_truth_csv
from mos_pipelines.identity.truth_eval import truth_node_key


def true_propensity_by_customer(con, truth_dir: Path) -> pd.Series | None:
    """customer_id → true propensity of the person most of its records belong to; None without truth files."""
    identity, people = truth_dir / "identity_truth.csv", truth_dir / "people.csv"
    if not identity.is_file() or not people.is_file():
        return None
    truth = load_truth_csv(identity)
    persons = pd.DataFrame({"node_key": [truth_node_key(s, r) for s, r in truth.index], "person_id": truth.to_numpy()})
    nodes = con.execute("select node_key, customer_id from marts.dim_customer_identity_map").df()
    linked = nodes.merge(persons, on="node_key")
    if linked.empty:
        return None
    majority = (
        linked.groupby(["customer_id", "person_id"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["customer_id", "n", "person_id"], ascending=[True, False, True])
        .drop_duplicates("customer_id")
    )
    propensity = pd.read_csv(people, usecols=["person_id", "propensity"]).set_index("person_id")["propensity"]
    return majority.set_index("customer_id")["person_id"].map(propensity).dropna()
