"""Score the warehouse's ``dim_customer_identity_map`` against a truth CSV (the simulator's format)."""

from __future__ import annotations

import functools
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


def truth_by_node_key(truth_path: Path) -> pd.Series:
    """The truth file's true entity id per identity node key (``load_truth_csv``'s errors for a bad file). Read once
    per version of the file in a process: a run's identity check, its summary and the decisioning truth share it
    (2 s a read at 100k people)."""
    path = Path(truth_path)
    if not path.is_file():
        load_truth_csv(path)  # raises its "truth file not found"
    stat = path.stat()
    return _truth_by_node_key(str(path.resolve()), stat.st_mtime_ns, stat.st_size).copy()


@functools.lru_cache(maxsize=4)
def _truth_by_node_key(path: str, modified_ns: int, size: int) -> pd.Series:
    truth = load_truth_csv(path)
    return pd.Series(truth.to_numpy(), index=[truth_node_key(s, r) for s, r in truth.index])


def predicted_customers(con: duckdb.DuckDBPyConnection) -> pd.Series:
    """node_key → customer_id from the warehouse."""
    frame = con.execute("select node_key, customer_id from marts.dim_customer_identity_map").df()
    return frame.set_index("node_key")["customer_id"]


def evaluate_identity(con: duckdb.DuckDBPyConnection, truth_path: Path, crm_only: bool = False) -> IdentityEvaluation:
    """Pairwise and clustered P/R/F1, largest clusters and over-merges of the identity map vs truth.

    Only nodes present in the truth are scored (identifier nodes like ``email:`` have no truth row).
    With ``crm_only``, only CRM records are scored: the deduplication figure.
    """
    truth_by_node = truth_by_node_key(truth_path)
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
    truth = truth_by_node_key(truth_path)
    persons = pd.DataFrame({"node_key": truth.index, "person_id": truth.to_numpy()})
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
