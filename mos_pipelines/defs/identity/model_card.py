"""The CRM matching model card as metadata of ``intermediate/int_crm_contacts__matched``.

The dbt Python model writes the fitted model to ``intermediate.int_crm_contacts__match_model`` and renders
its card to ``$MOS_HOME/reports/identity_model_card.json``: Dagster cannot open the warehouse while dbt
holds it, and a multi-asset must yield its outputs in dependency order, so the card is read from that file
when the model's materialization passes through the event stream, and attached to it: the per-level m, u
and match weights as a table and a text chart, the prior, EM convergence, what the population check left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import dagster as dg

from mos_pipelines.identity.model_card import CARD_FILE
from mos_pipelines.settings import get_settings

MATCHED = dg.AssetKey(["intermediate", "int_crm_contacts__matched"])


def card_metadata() -> dict[str, Any]:
    """The model card of the run that just built the model, as Dagster metadata."""
    path = get_settings().reports_dir / CARD_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {"model_card": dg.MetadataValue.md(f"No model card at {path}: {exc}")}
    meta: dict[str, Any] = {"model_card": dg.MetadataValue.md(data.pop("markdown"))}
    if "skipped" in data:
        meta["matching_skipped"] = data.pop("skipped")
    meta.update(data)
    return meta


def _is_matched(event: Any) -> bool:
    if isinstance(event, dg.Output):
        return event.output_name == MATCHED.to_python_identifier()
    return isinstance(event, dg.AssetMaterialization) and event.asset_key == MATCHED


def with_model_card(events: Iterable[Any]) -> Iterator[Any]:
    """``events`` in their order, the matched model's materialization with its model card."""
    for event in events:
        if _is_matched(event):
            event = event.with_metadata({**event.metadata, **card_metadata()})
        yield event
