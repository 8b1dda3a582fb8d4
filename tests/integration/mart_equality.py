"""Row-by-row comparison of the marts of two warehouses built from the same landing files (issue 20, item 4):
one built day by day incrementally, one built at once. Shared by the incremental-equality tests."""

from __future__ import annotations

from collections import Counter

import duckdb
import pandas as pd

# Columns that differ between two builds of the same data by construction (when the build ran, not what it
# read): the load time of a row and the identity log's run bookkeeping.
RUN_TIME_COLUMNS = frozenset(
    {
        "loaded_at",  # fct_events: when ingestion loaded the event
        "last_event_loaded_at",  # fct_sessions: the same, per session
        "changed_at",  # fct_customer_id_changes: wall clock of the identity run
        "run_number",  # fct_customer_id_changes: which of the N runs changed the node
        "id_created_run",  # fct_customer_id_changes, dim_customer_identity_map: the run that minted the id
        "assigned_in_run",  # dim_customer_identity_map: the run that gave the node its id
    }
)
# Columns that record when a stateful step first saw something, so N daily runs and one run differ by design.
HISTORY_COLUMNS = frozenset(
    {
        "first_assigned_date",  # fct_experiment_holdout: the persistent assignment log's first day (a unit is
        "last_assigned_date",  # assigned on the day it first appears; one build assigns everyone on the last day)
    }
)
# Columns derived from a customer id's label (a hash of it): equal only when the labels are.
LABEL_COLUMNS = frozenset(
    {
        "edge_id",  # customer_relationships: hash of the two ends' ids
    }
)
# Tables that are a record of the build history, not of the data.
HISTORY_TABLES = {
    "fct_customer_id_changes": "the id log: N runs' assignments, merges and splits against one run's",
    "dim_customers_snapshot": "dbt snapshot: a version per run that changed a customer",
    "fct_experiment_holdout": "reads the persistent assignment log: a unit counts sends after the day it was "
    "assigned, which is the day it first appeared in N daily runs and the last day in one build",
}
# customer_relationships stores an undirected edge once, source < target by id label: compared as unordered pairs.
# A colleague edge's evidence names the company as the golden record of the account's smallest customer id spells
# it ("both at Solarpoint Health" / "… Health LLC"): label-derived too, left out for those edges.
UNDIRECTED = ("colleague", "same_buying_group", "former_colleague")
DECIMALS = 6  # doubles summed in another order differ in the last bits


def mart_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
    ).fetchall()
    return [name for (name,) in rows]


def customer_id_translation(incremental: duckdb.DuckDBPyConnection, full: duckdb.DuckDBPyConnection) -> dict:
    """Incremental id -> full id, through the identity nodes both maps hold. Raises when the clusterings
    differ (an incremental id on nodes of two full ids, or the other way round)."""
    query = "select node_key, customer_id from marts.dim_customer_identity_map"
    pairs = incremental.execute(query).df().merge(full.execute(query).df(), on="node_key", suffixes=("_inc", "_full"))
    pairs = pairs[["customer_id_inc", "customer_id_full"]].drop_duplicates()
    split = pairs[pairs.duplicated("customer_id_inc", keep=False) | pairs.duplicated("customer_id_full", keep=False)]
    if len(split):
        raise AssertionError(f"the two builds clustered identity differently:\n{split.head(20)}")
    return dict(zip(pairs["customer_id_inc"], pairs["customer_id_full"]))


def _unordered_pairs(edges: pd.DataFrame) -> pd.DataFrame:
    """Undirected edges with source < target after the ids were translated (as the full build stores them)."""
    edges = edges.copy()
    swap = edges["relationship"].isin(UNDIRECTED) & (edges["source_id"] > edges["target_id"])
    edges.loc[swap, ["source_id", "target_id"]] = edges.loc[swap, ["target_id", "source_id"]].to_numpy()
    return edges


def _canonical_rows(frame: pd.DataFrame) -> Counter:
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].round(DECIMALS) + 0.0  # -0.0 -> 0.0
    return Counter(tuple(None if pd.isna(v) else str(v) for v in row) for row in frame.itertuples(index=False))


def mart_differences(
    incremental: duckdb.DuckDBPyConnection, full: duckdb.DuckDBPyConnection, tables: list[str] | None = None
) -> dict[str, str]:
    """table -> what differs (rows only one side has, first few shown); empty when every mart is equal."""
    translate = customer_id_translation(incremental, full)
    names = tables if tables is not None else mart_tables(full)
    differences: dict[str, str] = {}
    missing = set(names) - set(mart_tables(incremental))
    for name in sorted(missing):
        differences[name] = "missing from the incremental build"
    for name in names:
        if name in HISTORY_TABLES or name in missing:
            continue
        inc = incremental.execute(f"select * from marts.{name}").df()
        ful = full.execute(f"select * from marts.{name}").df()
        if list(inc.columns) != list(ful.columns):
            differences[name] = f"columns differ: {list(inc.columns)} != {list(ful.columns)}"
            continue
        excluded = RUN_TIME_COLUMNS | HISTORY_COLUMNS | LABEL_COLUMNS
        keep = [c for c in ful.columns if c not in excluded]
        inc, ful = inc[keep], ful[keep].copy()
        for column in keep:  # customer ids, wherever they appear (customer_id, source_id/target_id of an edge, …)
            if inc[column].dtype == object:
                inc[column] = inc[column].map(lambda v: translate.get(v, v) if isinstance(v, str) else v)
        if name == "customer_relationships":
            inc, ful = _unordered_pairs(inc), ful.copy()
            for edges in (inc, ful):
                edges.loc[edges["relationship"] == "colleague", "evidence"] = None
        inc_rows, full_rows = _canonical_rows(inc), _canonical_rows(ful)
        if inc_rows != full_rows:
            only_inc = list((inc_rows - full_rows).elements())
            only_full = list((full_rows - inc_rows).elements())
            differences[name] = (
                f"{len(only_inc)} rows only in the incremental build, {len(only_full)} only in the full one "
                f"(of {len(ful)}; columns {keep}):\n  incremental: {only_inc[:3]}\n  full:        {only_full[:3]}"
            )
    return differences


def ids_that_differ_have_history(incremental: duckdb.DuckDBPyConnection, translate: dict) -> list[str]:
    """Incremental customer ids that differ from the full build's but whose nodes never changed after the id was
    minted (no merge, split or later node in fct_customer_id_changes): should be none."""
    differing = [inc for inc, full in translate.items() if inc != full]
    if not differing:
        return []
    changed = {
        cid
        for (cid,) in incremental.execute(
            "select distinct customer_id from marts.fct_customer_id_changes where run_number > id_created_run "
            "or change in ('merged', 'split') union select distinct previous_customer_id "
            "from marts.fct_customer_id_changes where previous_customer_id is not null"
        ).fetchall()
    }
    return [cid for cid in differing if cid not in changed]
