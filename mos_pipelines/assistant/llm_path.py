"""The LLM path: a model (``config/llm.yaml`` task ``question_answering``, prompt ``question.spec``) writes the spec
as JSON; the answer is used only when it is a ``MetricSpec`` or ``CustomerSpec`` that passes the same validation as
the parser's (names from the manifest and the config, values the warehouse has). The model never writes SQL. With
the offline default model, or when no model gives a valid spec, the deterministic parser answers."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from mos_pipelines.assistant.catalog import Catalog
from mos_pipelines.assistant.parser import Parsed
from mos_pipelines.assistant.spec import CustomerSpec, MetricSpec, SpecError, validate_metric

TASK, PROMPT = "question_answering", "question.spec"


def spec_facts(question: str, catalog: Catalog, previous: dict[str, Any] | None) -> dict[str, Any]:
    layer = catalog.layer
    lookup = catalog.settings.customers
    return {
        "question": question,
        "as_of": str(catalog.as_of) if catalog.as_of else None,
        "metrics": {n: m.get("description") or m.get("label") or n for n, m in layer.metrics.items()},
        "dimensions": {d: sorted(v)[:50] for d, v in catalog.dimension_values.items()},
        "customer_fields": {n: sorted(catalog.customer_values.get(n, ()))[:50] for n in lookup.fields},
        "previous": (previous or {}).get("spec"),
        "metric_schema": MetricSpec.model_json_schema(),
        "customer_schema": CustomerSpec.model_json_schema(),
        "example": json.dumps({"kind": "metric", "metrics": ["revenue"], "group_by": ["channel"]}),
    }


def checker(catalog: Catalog):
    """What ``LLM.structured`` calls on the model's JSON: a ``Parsed`` or ``ValueError`` (the answer is rejected)."""

    def check(data: Any) -> Parsed:
        if not isinstance(data, dict):
            raise ValueError("the answer is not a JSON object")
        if set(data) == {"refusal"}:
            return Parsed(None, refusal=f"the model: {str(data['refusal'])[:300]}", alternatives=catalog.alternatives())
        try:
            if data.get("kind") == "customers":
                return Parsed(CustomerSpec.model_validate(data))
            spec = MetricSpec.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"not a spec: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from None
        try:
            validate_metric(spec, catalog)
        except SpecError as exc:
            raise ValueError(str(exc)) from None
        return Parsed(spec)

    return check


def spec_from_llm(question: str, catalog: Catalog, previous: dict[str, Any] | None) -> tuple[Parsed | None, str, float]:
    """(the model's parsed spec or None, the model that answered or why none did, $ of the calls)."""
    from mos_pipelines.llm.client import LLM

    llm = LLM()
    asked = llm.structured(TASK, PROMPT, spec_facts(question, catalog, previous), checker(catalog), context="assistant")
    cost = sum(c.cost_usd or 0.0 for c in asked.calls)
    return asked.value, asked.model, cost
