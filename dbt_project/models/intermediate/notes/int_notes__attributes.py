"""Every attribute read from every CRM note (landed or written through the CRM API) (one row per fact), with its span, evidence, confidence and extractor.

Thin wrapper: the extraction is mos_pipelines.notes (offline rules, unit-tested and benchmarked in
benchmarks/notes_bench.py; the LLM path when config/llm.yaml points task note_extraction at a model, its calls in
ops.llm_calls); the rows are mos_pipelines.notes.table.attribute_rows. Notes without text or timestamp yield no rows.
A note read by the last build with the same extractor (the same note_key) keeps that build's rows, so a day's build
reads only the new and changed notes; a note that is gone is gone from the table (it is rebuilt whole).
"""


def model(dbt, session):
    dbt.config(materialized="table")
    from mos_pipelines.notes.table import attribute_rows, configured_extractor, extractor_identity, previous_rows

    notes = dbt.ref("int_crm__notes").df()
    extractor, _ = configured_extractor(session)
    previous = previous_rows(session, dbt.this.schema, dbt.this.identifier)
    return attribute_rows(notes.to_dict("records"), extractor, previous, extractor_identity()).frame
