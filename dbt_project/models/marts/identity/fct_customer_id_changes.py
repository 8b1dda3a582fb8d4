"""Append-only log of customer-id changes: the state that keeps customer ids stable across runs.

Each run compares this run's identity components with the latest id of every node in this table and
appends only what changed (new nodes `assigned`, nodes that moved `merged` / `split`); re-running on
the same data appends nothing. Logic: mos_pipelines.identity.stable_ids (unit-tested).
"""


def model(dbt, session):
    # full_refresh=False: `--full-refresh` (`mos run --full-refresh`) must not start the log over, or every customer
    # id would be minted again; `make clean` (or dropping the table) does, on purpose.
    dbt.config(materialized="incremental", incremental_strategy="append", full_refresh=False)
    import datetime

    import pandas as pd

    from mos_pipelines.identity.stable_ids import assign_customer_ids

    components = dbt.ref("int_identity__components").df()
    clusters = components[["node_key", "component_key"]].rename(columns={"component_key": "cluster_key"})
    previous = pd.DataFrame({"node_key": [], "customer_id": [], "id_created_run": []})
    run = 1
    if dbt.is_incremental:
        history = session.sql(
            f"select node_key, customer_id, id_created_run, run_number from {dbt.this} "
            "qualify row_number() over (partition by node_key order by run_number desc) = 1"
        ).df()
        if len(history):
            previous = history[["node_key", "customer_id", "id_created_run"]]
            run = int(session.sql(f"select max(run_number) from {dbt.this}").fetchall()[0][0]) + 1
    assignment = assign_customer_ids(clusters, previous, run)
    created = assignment.current.set_index("node_key")["id_created_run"]
    changes = assignment.changes
    return pd.DataFrame({
        "node_key": changes["node_key"].astype("string"),
        "customer_id": changes["customer_id"].astype("string"),
        "previous_customer_id": changes["previous_customer_id"].astype("string"),
        "change": changes["change"].astype("string"),
        "id_created_run": changes["node_key"].map(created).astype("int64"),
        "run_number": pd.Series([run] * len(changes), dtype="int64"),
        "changed_at": pd.Series([datetime.datetime.now(datetime.UTC).replace(tzinfo=None)] * len(changes),
                                dtype="datetime64[us]"),
    })
