"""The two query specs an answer may run, and their validation.

A ``MetricSpec`` asks the dbt semantic layer for metrics (grouped, filtered, over a time range, ordered, limited,
optionally compared with an earlier period); a ``CustomerSpec`` is a governed look-up over the customer marts
(fields, filters, a limit; no free SQL). The parser and the LLM path both produce these, and both are checked by
``validate_metric`` / ``validate_customers`` against the manifest, the config and the warehouse's values before
anything is compiled: an identifier that is not in the manifest or the config, or a value the warehouse does not
have, never reaches SQL.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from mos_pipelines.access import Principal
    from mos_pipelines.assistant.catalog import Catalog

TIME_GROUPS = ("metric_time__day", "metric_time__week", "metric_time__month")
Compare = Literal["previous_period", "previous_week", "previous_month", "previous_year"]


class SpecError(ValueError):
    """A spec that names something the semantic layer, the config or the warehouse does not have."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeRange(_Strict):
    start: datetime.date
    end: datetime.date
    label: str = Field("", max_length=80)


class MetricFilter(_Strict):
    dimension: str = Field(max_length=64)
    values: tuple[str, ...] = Field(min_length=1, max_length=20)
    negate: bool = False


class MetricSpec(_Strict):
    kind: Literal["metric"] = "metric"
    metrics: tuple[str, ...] = Field(min_length=1, max_length=4)
    group_by: tuple[str, ...] = Field((), max_length=2)
    filters: tuple[MetricFilter, ...] = Field((), max_length=6)
    time_range: TimeRange | None = None
    compare: Compare | None = None
    order_by: str | None = None  # one of metrics
    descending: bool = True
    limit: int | None = Field(None, ge=1, le=10_000)


class CustomerFilter(_Strict):
    field: str = Field(max_length=64)
    values: tuple[str, ...] = Field(min_length=1, max_length=20)


class CustomerSpec(_Strict):
    kind: Literal["customers"] = "customers"
    fields: tuple[str, ...] = Field((), max_length=20)  # empty: the configured fields
    filters: tuple[CustomerFilter, ...] = Field((), max_length=6)
    count_only: bool = False
    limit: int | None = Field(None, ge=1, le=10_000)


def validate_metric(spec: MetricSpec, catalog: Catalog) -> MetricSpec:
    """The spec with each metric swapped for its variant over a model with the asked dimensions (``revenue`` by
    segment is ``revenue_by_segment``), or ``SpecError``."""
    layer = catalog.layer
    dims = [g for g in spec.group_by if g not in TIME_GROUPS] + [f.dimension for f in spec.filters]
    for g in spec.group_by:
        if g not in TIME_GROUPS and g not in catalog.dimension_values:
            raise SpecError(f"no dimension '{g}' to group by (known: {', '.join(catalog.dimension_values)})")
    metrics = []
    for name in spec.metrics:
        if name not in layer.metrics:
            raise SpecError(f"the semantic layer defines no metric '{name}'")
        candidates = [name] + [f"{name}_by_{d}" for d in dict.fromkeys(dims)]
        chosen = next(
            (c for c in candidates if c in layer.metrics and all(layer.has_dimension(c, d) for d in dims)), None
        )
        if chosen is None:
            raise SpecError(f"{layer.label(name)} cannot be split or filtered by {', '.join(dict.fromkeys(dims))}")
        metrics.append(chosen)
    models = {layer.model_of(m)["name"] for m in metrics}
    if len(models) > 1:
        raise SpecError(f"{', '.join(spec.metrics)} come from different tables; ask for them one at a time")
    for f in spec.filters:
        known = catalog.dimension_values.get(f.dimension)
        if known is None:
            raise SpecError(f"no dimension '{f.dimension}' to filter on")
        for value in f.values:
            if value not in known:
                raise SpecError(f"no {f.dimension} '{value}' in the data (known: {', '.join(sorted(known)[:12])})")
    if spec.order_by is not None and spec.order_by not in spec.metrics:
        raise SpecError(f"order_by '{spec.order_by}' is not one of the metrics asked")
    if spec.time_range and spec.time_range.start > spec.time_range.end:
        raise SpecError("the time range starts after it ends")
    if spec.compare and spec.time_range is None:
        raise SpecError("a comparison needs a time range")
    limit = spec.limit
    if limit is not None:
        limit = min(limit, catalog.settings.limits.max_rows)
    order_by = spec.order_by
    if order_by is not None:
        order_by = metrics[list(spec.metrics).index(order_by)]
    return spec.model_copy(update={"metrics": tuple(metrics), "order_by": order_by, "limit": limit})


def validate_customers(spec: CustomerSpec, catalog: Catalog, principal: Principal) -> CustomerSpec:
    """The spec with its fields (the configured ones when none) and limit settled, or ``SpecError``. Filtering on a
    PII field needs ``see_pii`` (else a filter would confirm a hidden email)."""
    config = catalog.settings.customers
    fields = spec.fields or config.shown
    for name in fields:
        if name not in config.fields:
            raise SpecError(f"no customer field '{name}' (known: {', '.join(config.fields)})")
    for f in spec.filters:
        field = config.fields.get(f.field)
        if field is None:
            raise SpecError(f"no customer field '{f.field}' to filter on (known: {', '.join(config.fields)})")
        if field.pii and not principal.can("see_pii"):
            raise SpecError(f"filtering on {f.field} needs the see_pii permission ({principal.role} lacks it)")
        known = catalog.customer_values.get(f.field)
        if known is not None:
            for value in f.values:
                if value not in known:
                    raise SpecError(f"no {f.field} '{value}' in the data")
    cap = catalog.settings.limits.max_customers
    limit = min(spec.limit or cap, cap)
    return spec.model_copy(update={"fields": tuple(fields), "limit": limit})
