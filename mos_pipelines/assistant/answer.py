"""The sentence that states an answer's numbers, and its chart."""

from __future__ import annotations

import math
from typing import Any

from mos_pipelines.assistant.catalog import Catalog
from mos_pipelines.assistant.spec import TIME_GROUPS, CustomerSpec, MetricSpec

PERCENT_METRICS = ("conversion_rate",)


def fmt(value: Any, metric: str, catalog: Catalog) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no value"
    base = metric.removesuffix("_previous").removesuffix("_change")
    label = catalog.layer.metrics.get(base, {}).get("label") or ""
    number = float(value)
    if base.startswith(PERCENT_METRICS):
        return f"{number * 100:,.2f} %"
    if "USD" in label:
        return f"${number:,.2f}"
    if catalog.layer.metrics.get(base, {}).get("type") in ("ratio", "derived"):
        return f"{number:,.3f}"
    return f"{number:,.0f}" if number == int(number) else f"{number:,.2f}"


def _label(metric: str, catalog: Catalog) -> str:
    return catalog.layer.label(metric) if metric in catalog.layer.metrics else metric


def _scope(spec: MetricSpec) -> str:
    parts = []
    for f in spec.filters:
        values = ", ".join(f.values)
        parts.append(f"{f.dimension} {'not ' if f.negate else ''}{values}")
    tr = spec.time_range
    when = f"from {tr.start} to {tr.end}" if tr else "over all the data"
    if tr and tr.start == tr.end:
        when = f"on {tr.start}"
    return (" for " + "; ".join(parts) + "," if parts else "") + f" {when}"


def describe_metric(spec: MetricSpec, columns: list[str], rows: list[list], catalog: Catalog, truncated: bool) -> str:
    labels = ", ".join(_label(m, catalog) for m in spec.metrics)
    scope = _scope(spec)
    if not rows:
        return f"{labels}{scope}: no rows in the data."
    dims = [c for c in columns if c not in spec.metrics and not c.endswith(("_previous", "_change"))]
    idx = {c: i for i, c in enumerate(columns)}

    def values(row: list) -> str:
        out = []
        for m in spec.metrics:
            piece = (
                f"{_label(m, catalog)} {fmt(row[idx[m]], m, catalog)}"
                if len(spec.metrics) > 1
                else fmt(row[idx[m]], m, catalog)
            )
            if spec.compare:
                prev = row[idx[f"{m}_previous"]]
                piece += f" vs {fmt(prev, m, catalog)} in the {spec.compare.replace('_', ' ')}"
                if prev not in (None, 0) and row[idx[m]] is not None:
                    piece += f" ({(float(row[idx[m]]) / float(prev) - 1) * 100:+.1f} %)"
            out.append(piece)
        return "; ".join(out)

    if not dims:
        return f"{labels}{scope}: {values(rows[0])}."
    shown = rows[:8]
    listed = "; ".join(f"{' / '.join(_name(r[idx[d]]) for d in dims)}: {values(r)}" for r in shown)
    more = f" (and {len(rows) - len(shown)} more rows)" if len(rows) > len(shown) else ""
    if truncated:
        more += " (cut at the row limit)"
    by = ", ".join(d.replace("metric_time__", "") for d in dims)
    head = f"Top {len(rows)} by {_label(spec.order_by, catalog)}" if spec.order_by and spec.limit else labels
    return f"{head} by {by}{scope} — {listed}{more}."


def describe_customers(spec: CustomerSpec, rows: list[list], truncated: bool, masked: bool) -> str:
    scope = "; ".join(f"{f.field} {', '.join(f.values)}" for f in spec.filters) or "all customers"
    if spec.count_only:
        return f"{rows[0][0]:,} customers match ({scope})."
    note = " Emails, phones and names are masked for your role." if masked else ""
    more = f" Showing the first {len(rows)}." if truncated or len(rows) >= (spec.limit or 0) else ""
    return f"{len(rows)} customers match ({scope}).{more}{note}"


def _name(value: Any) -> str:
    return "(none)" if value is None else str(value)


def chart(spec: MetricSpec, columns: list[str]) -> dict[str, Any] | None:
    time = [g for g in spec.group_by if g in TIME_GROUPS]
    if time:
        return {"type": "line", "x": time[0], "y": list(spec.metrics)}
    if spec.group_by and len(spec.group_by) == 1:
        return {"type": "bar", "x": spec.group_by[0], "y": list(spec.metrics)}
    return None
