"""Every attribute read from every CRM note (one row per fact), with its span, evidence, confidence and extractor.

Thin wrapper: the extraction is mos_pipelines.notes (offline rules, unit-tested and benchmarked in
benchmarks/notes_bench.py); the rows are mos_pipelines.notes.table.attribute_rows. Notes without text or timestamp
yield no rows.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    from mos_pipelines.notes.table import attribute_rows

    notes = dbt.ref("stg_crm__notes").df()
    return attribute_rows(notes.to_dict("records")).frame
