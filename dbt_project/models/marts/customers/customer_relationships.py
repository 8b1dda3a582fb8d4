"""The relationship graph: typed, weighted edges between customers and accounts, each with its evidence.

Thin wrapper: the logic is mos_pipelines.relationships.build_edges (plain Python, unit-tested); its inputs are
int_relationships__contacts, int_relationships__employers, the notes of customer_note_attributes' customers and
the edges set through the CRM API (int_relationships__manual, evidence source `manual`).
"""


def model(dbt, session):
    dbt.config(materialized="table")
    from mos_pipelines.relationships import build_edges

    contacts = dbt.ref("int_relationships__contacts").df()
    employers = dbt.ref("int_relationships__employers").df()
    attributes = dbt.ref("customer_note_attributes").df()
    staged = dbt.ref("int_crm__notes").df()
    manual = dbt.ref("int_relationships__manual").df()
    owners = attributes[["note_id", "customer_id"]].dropna().drop_duplicates()
    notes = staged[["note_id", "note_text"]].merge(owners, on="note_id")
    return build_edges(contacts, employers, notes, manual=manual).frame
