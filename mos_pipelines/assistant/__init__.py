"""The conversational assistant (issue #18): questions answered from the dbt semantic layer and a governed
customer look-up, safely.

A question becomes a ``MetricSpec`` (metrics, group-by, filters, time range, comparison, order, limit) or a
``CustomerSpec`` (fields, filters, limit) — by the deterministic parser (``parser``), or by a model through the LLM
layer (``llm_path``) whose JSON is validated the same way — and is refused with close alternatives when it cannot
be. SQL is compiled from the validated spec only (``compile``) and run read-only with external access off, a
statement timeout and a row limit (``execute``). PII is masked for readers without ``see_pii``. Every question is
logged in ``ops.assistant_log`` (``log``); follow-ups keep the thread (``threads``).

    from mos_pipelines.assistant import ask, Answer
    answer = ask("revenue by channel last 7 days", principal=principal("analyst"))
"""

from mos_pipelines.assistant.core import Answer, ask

__all__ = ["Answer", "ask"]
