"""What the assistant knows: the semantic layer's metrics and dimensions, the words for them (config), the values
each dimension and customer field has in the warehouse, and the data's last day (every relative date ends there).

Read at most every 30 s per warehouse and kept in the process: a question then costs one parse and one query.
"""

from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from mos_pipelines.configuration import load_assistant
from mos_pipelines.configuration.assistant import AssistantSettings
from mos_pipelines.insights.semantic import SemanticLayer
from mos_pipelines.warehouse import columns_of, table_exists

MAX_VALUES = 5000  # distinct values read per dimension or field (a free-text column is not a vocabulary)


@dataclass
class Catalog:
    settings: AssistantSettings
    layer: SemanticLayer
    dimension_values: dict[str, set[str]]  # categorical dimension of any semantic model -> values in the warehouse
    customer_values: dict[str, set[str]]  # customer field with values_from_warehouse -> values
    as_of: datetime.date | None  # the data's last day
    first_day: datetime.date | None
    missing: list[str] = field(default_factory=list)  # what could not be read, and why

    def metric_names(self) -> list[str]:
        return sorted(self.layer.metrics)

    def alternatives(self, limit: int = 6) -> list[str]:
        """Questions this warehouse can answer, phrased from the manifest (for refusals)."""
        dims = [d for d in ("channel", "region", "segment", "campaign_id") if d in self.dimension_values]
        out = []
        for metric in ("revenue", "roas", "cac", "conversion_rate", "spend", "new_customers"):
            if metric in self.layer.metrics:
                out.append(self.layer.label(metric))
        phrased = [f"{out[0]} by {dims[0]}" if out and dims else None]
        phrased += [f"{m} last 7 days" for m in out[1:3]]
        phrased += [f"top 5 campaigns by {out[0]}" if out and "campaign_id" in dims else None]
        phrased += [f"daily {out[-1]}" if out else None]
        phrased += ["customers in stage SQL in the EU"]
        return [p for p in phrased if p][:limit]


def _schema_name(relation: dict) -> tuple[str, str]:
    return relation["schema_name"], relation["alias"]


def read_catalog(
    con: duckdb.DuckDBPyConnection, settings: AssistantSettings | None = None, layer: SemanticLayer | None = None
) -> Catalog:
    """The catalog of the warehouse behind ``con`` (read-only queries; a missing table is noted, not raised)."""
    settings = settings or load_assistant()
    layer = layer or SemanticLayer.load()
    missing: list[str] = []
    values: dict[str, set[str]] = {}
    first_day = as_of = None
    for model in layer.models.values():
        schema, name = _schema_name(model["node_relation"])
        if not table_exists(con, schema, name):
            missing.append(f"{schema}.{name} (semantic model {model['name']}) is not in the warehouse")
            continue
        table = f'"{schema}"."{name}"'
        for dim in model.get("dimensions", []):
            if dim["type"] != "categorical":
                continue
            expr = dim.get("expr") or f'"{dim["name"]}"'
            rows = con.execute(
                f"select distinct cast({expr} as varchar) from {table} where {expr} is not null limit {MAX_VALUES}"
            ).fetchall()
            values.setdefault(dim["name"], set()).update(r[0] for r in rows)
        time_dim = model["defaults"]["agg_time_dimension"]
        low, high = con.execute(f'select min("{time_dim}"), max("{time_dim}") from {table}').fetchall()[0]
        if high is not None:
            high, low = _day(high), _day(low)
            as_of = high if as_of is None else max(as_of, high)
            first_day = low if first_day is None else min(first_day, low)
    customer_values: dict[str, set[str]] = {}
    lookup = settings.customers
    for name, spec in lookup.fields.items():
        if not spec.values_from_warehouse:
            continue
        relation = lookup.tables.get(spec.table)
        if relation is None:
            missing.append(f"customer field {name}: no table alias {spec.table}")
            continue
        schema, table = relation.split(".", 1)
        if not table_exists(con, schema, table) or spec.column not in columns_of(con, schema, table):
            missing.append(f"customer field {name}: {relation}.{spec.column} is not in the warehouse")
            continue
        rows = con.execute(
            f'select distinct cast("{spec.column}" as varchar) from "{schema}"."{table}" '
            f'where "{spec.column}" is not null limit {MAX_VALUES}'
        ).fetchall()
        customer_values[name] = {r[0] for r in rows if r[0].strip()}
    return Catalog(settings, layer, values, customer_values, as_of, first_day, missing)


def _day(value: object) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value)[:10])


_CACHE: dict[tuple[str, str], tuple[float, Catalog]] = {}
_LOCK = threading.Lock()
CATALOG_TTL_S = 30.0


def cached_catalog(con: duckdb.DuckDBPyConnection, path: Path, settings: AssistantSettings) -> Catalog:
    """``read_catalog`` at most once per ``CATALOG_TTL_S`` per (warehouse file, settings): a run's new values (a new
    channel, a later last day) are seen within that time. Not keyed on the file's modification time: every answer's
    log row writes the file."""
    key = (str(path), settings.model_dump_json())
    now = time.monotonic()
    with _LOCK:
        found = _CACHE.get(key)
    if found is None or now - found[0] > CATALOG_TTL_S:
        found = (now, read_catalog(con, settings))
        with _LOCK:
            _CACHE.clear()  # one warehouse at a time
            _CACHE[key] = found
    return found[1]
