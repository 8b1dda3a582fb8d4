"""Every attribute read from every CRM note (landed or written through the CRM API) (one row per fact), with its span, evidence, confidence and extractor.

Thin wrapper: the extraction is mos_pipelines.notes (offline rules, unit-tested and benchmarked in
benchmarks/notes_bench.py; the LLM path when config/llm.yaml points task note_extraction at a model, its calls in
ops.llm_calls); the rows are mos_pipelines.notes.table.attribute_rows. Notes without text or timestamp yield no rows.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    from mos_pipelines.notes.table import attribute_rows, configured_extractor

    notes = dbt.ref("int_crm__notes").df()
    extractor, _ = configured_extractor(session)
    return attribute_rows(notes.to_dict("records"), extractor).frame
