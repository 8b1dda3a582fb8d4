"""The CRM matching model card as metadata of ``intermediate/int_crm_contacts__matched``.

The dbt Python model writes the fitted model to ``intermediate.int_crm_contacts__match_model``; this wraps a
dbt step's event stream, holds back that asset's materialization (and its check results, to keep their
order) until dbt has exited — DuckDB lets no other process open the file while dbt writes it, which is also
why dagster-dbt's own row counts wait for the end on DuckDB — and then attaches the model card: the
per-level m, u and match weights as a table and a text chart, the prior, EM convergence, what the
population check left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import dagster as dg

from mos_pipelines import warehouse
from mos_pipelines.identity import model_card
from mos_pipelines.settings import get_settings

MATCHED = dg.AssetKey(["intermediate", "int_crm_contacts__matched"])


def _about_matched(event: Any) -> bool:
    if isinstance(event, dg.Output):
        return event.output_name == MATCHED.to_python_identifier()
    if isinstance(event, dg.AssetMaterialization):
        return event.asset_key == MATCHED
    return getattr(event, "asset_key", None) == MATCHED


def card_metadata() -> dict[str, Any]:
    """The model card of the last run, as Dagster metadata (empty when the table cannot be read)."""
    try:
        con = warehouse.connect(get_settings().warehouse_path, read_only=True)
        try:
            frame = con.execute(f"select * from intermediate.{model_card.MODEL_TABLE}").df()
        finally:
            con.close()
    except Exception as exc:  # the model failed or was not built: the materialization says so already
        return {"model_card": dg.MetadataValue.md(f"No model card: {exc}")}
    if frame.empty:
        return {}
    first = frame.iloc[0]
    meta: dict[str, Any] = {"model_card": dg.MetadataValue.md(model_card.markdown(frame))}
    if isinstance(first["skip_reason"], str):
        meta["matching_skipped"] = first["skip_reason"]
        return meta
    meta.update({
        "prior_lambda": float(first["lambda"]),
        "candidate_pairs": int(first["candidate_pairs"]),
        "em_converged": bool(first["em_converged"]),
        "comparisons": int(frame.loc[frame["comparison"] != "prior", "comparison"].nunique()),
    })
    return meta


def with_model_card(events: Iterable[Any]) -> Iterator[Any]:
    """``events`` unchanged, except that the matched model's materialization comes last, with its model card."""
    held: list[Any] = []

    def release() -> Iterator[Any]:
        meta = card_metadata() if any(isinstance(e, (dg.Output, dg.AssetMaterialization)) for e in held) else {}
        for event in held:
            if meta and isinstance(event, (dg.Output, dg.AssetMaterialization)):
                event = event.with_metadata({**event.metadata, **meta})
            yield event

    try:
        for event in events:
            if _about_matched(event):
                held.append(event)
            else:
                yield event
    except Exception:
        yield from release()
        raise
    yield from release()
