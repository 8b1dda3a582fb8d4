"""The CRM API (issue #19): an operational store (``store``), customers merged from the warehouse (``customers``),
the FastAPI router mounted at ``/api/v1`` (``api``) and signed webhooks delivered through the activation ledger
(``webhooks``). No Dagster and no simulator here; the Dagster wiring is ``mos_pipelines.defs.crm``."""
