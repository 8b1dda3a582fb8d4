"""Score the warehouse's ``dim_customer_identity_map`` against a truth CSV (the simulator's format)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from mos_pipelines.identity.evaluation import IdentityEvaluation, evaluate, load_truth_csv

# Truth `source` → identity node key prefix. CRM systems are any other source name.
NODE_PREFIX = {"segment_anonymous_id": "anon:", "segment_user_id": "user:", "orders": "order:"}


def truth_node_key(source: str, record_id: str) -> str:
    """The identity node a truth row describes: CRM records are ``crm:<system>:<id>``."""
    prefix = NODE_PREFIX.get(source)
    return f"{prefix}{record_id}" if prefix else f"crm:{source}:{record_id}"


def predicted_customers(con: duckdb.DuckDBPyConnection) -> pd.Series:
    """node_key → customer_id from the warehouse."""
    frame = con.execute("select node_key, customer_id from marts.dim_customer_identity_map").df()
    return frame.set_index("node_key")["customer_id"]


def evaluate_identity(con: duckdb.DuckDBPyConnection, truth_path: Path, crm_only: bool = False) -> IdentityEvaluation:
    """Pairwise and clustered P/R/F1, largest clusters and over-merges of the identity map vs truth.

    Only nodes present in the truth are scored (identifier nodes like ``email:`` have no truth row).
    With ``crm_only``, only CRM records are scored: the deduplication figure.
    """
    truth = load_truth_csv(truth_path)
    keys = [truth_node_key(s, r) for s, r in truth.index]
    truth_by_node = pd.Series(truth.to_numpy(), index=keys)
    if crm_only:
        truth_by_node = truth_by_node[truth_by_node.index.str.startswith("crm:")]
    predicted = predicted_customers(con)
    predicted = predicted[predicted.index.isin(truth_by_node.index)]
    return evaluate(predicted, truth_by_node)


def person_by_customer(con: duckdb.DuckDBPyConnection, truth_path: Path) -> pd.Series:
    """customer_id → the true person most of the customer's records belong to (ties: the smallest person id);
    empty without a truth file or a customer map."""
    if not truth_path.is_file():
        return pd.Series(dtype=object)
    truth = load_truth_csv(truth_path)
    persons = pd.DataFrame({"node_key": [truth_node_key(s, r) for s, r in truth.index], "person_id": truth.to_numpy()})
    nodes = con.execute(
        "select node_key, cast(customer_id as varchar) as customer_id from marts.dim_customer_identity_map"
    ).df()
    linked = nodes.merge(persons, on="node_key")
    if linked.empty:
        return pd.Series(dtype=object)
    majority = (
        linked.groupby(["customer_id", "person_id"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["customer_id", "n", "person_id"], ascending=[True, False, True])
        .drop_duplicates("customer_id")
    )
    return majority.set_index("customer_id")["person_id"]
