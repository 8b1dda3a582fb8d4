"""SQL from a validated spec, and nothing else.

Metric SQL comes from ``insights.semantic.SemanticLayer`` (identifiers from the manifest; values as quoted
literals, already checked against the warehouse's values), wrapped for the time range, the comparison, the order
and the limit. Customer SQL names only the configured tables and columns; its values are bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mos_pipelines.assistant.catalog import Catalog
from mos_pipelines.assistant.dates import shift
from mos_pipelines.assistant.spec import CustomerSpec, MetricSpec
from mos_pipelines.insights.semantic import Filter


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: tuple[Any, ...]
    columns: tuple[str, ...]
    mf_query: str | None
    pii: dict[str, str]  # output column -> pii kind (masked for readers without see_pii)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compile_metric(spec: MetricSpec, catalog: Catalog) -> Compiled:
    layer = catalog.layer
    where = []
    for f in spec.filters:
        op = ("not in" if f.negate else "in") if len(f.values) > 1 else ("!=" if f.negate else "=")
        where.append(Filter(f.dimension, op, list(f.values) if len(f.values) > 1 else f.values[0]))

    def one(start, end):
        time = []
        if start is not None:
            time = [Filter("metric_time__day", ">=", start), Filter("metric_time__day", "<=", end)]
        return layer.query(spec.metrics, spec.group_by, [*where, *time], with_components=False)

    tr = spec.time_range
    current = one(tr.start if tr else None, tr.end if tr else None)
    dims = [c for c in current.columns if c not in spec.metrics]
    if spec.compare and tr is not None:
        p_start, p_end = shift(tr.start, tr.end, spec.compare)
        previous = one(p_start, p_end)
        on = " and ".join(f"c.{_q(d)} is not distinct from p.{_q(d)}" for d in dims) or "true"
        cols = [f"c.{_q(d)}" for d in dims]
        columns = list(dims)
        for m in spec.metrics:
            cols += [
                f"c.{_q(m)} as {_q(m)}",
                f"p.{_q(m)} as {_q(m + '_previous')}",
                f"c.{_q(m)} - p.{_q(m)} as {_q(m + '_change')}",
            ]
            columns += [m, f"{m}_previous", f"{m}_change"]
        body = (
            f"with current_period as (\n{current.sql}\n),\nprevious_period as (\n{previous.sql}\n)\n"
            f"select {', '.join(cols)}\nfrom current_period as c\nleft join previous_period as p on {on}"
        )
        mf = f"{current.mf_command}  # and again with the range {p_start} to {p_end}"
    else:
        body, columns, mf = current.sql, list(current.columns), current.mf_command
    order = ", ".join(_q(d) for d in dims)
    if spec.order_by:
        direction = "desc" if spec.descending else "asc"
        order = f"{_q(spec.order_by)} {direction} nulls last" + (f", {order}" if order else "")
    sql = f"select *\nfrom (\n{body}\n) as answer"
    if order:
        sql += f"\norder by {order}"
    limit = min(spec.limit or catalog.settings.limits.max_rows, catalog.settings.limits.max_rows)
    sql += f"\nlimit {int(limit)}"
    if spec.order_by:
        mf += f" --order-by {'-' if spec.descending else ''}{spec.order_by}"
    if spec.limit:
        mf += f" --limit {int(spec.limit)}"
    return Compiled(sql, (), tuple(columns), mf, {})


def compile_customers(spec: CustomerSpec, catalog: Catalog) -> Compiled:
    lookup = catalog.settings.customers
    aliases = list(lookup.tables)
    base = aliases[0]
    used = {base}
    select = []
    pii: dict[str, str] = {}
    for name in spec.fields:
        f = lookup.fields[name]
        used.add(f.table)
        select.append(f"{_q(f.table)}.{_q(f.column)} as {_q(name)}")
        if f.pii:
            pii[name] = f.pii
    conditions = []
    params: list[Any] = []
    for flt in spec.filters:
        f = lookup.fields[flt.field]
        used.add(f.table)
        marks = ", ".join("?" for _ in flt.values)
        conditions.append(f"cast({_q(f.table)}.{_q(f.column)} as varchar) in ({marks})")
        params += list(flt.values)
    joins = []
    key = _q(lookup.key)
    for alias in aliases[1:]:
        if alias in used:
            schema, table = lookup.tables[alias].split(".", 1)
            joins.append(f"left join {_q(schema)}.{_q(table)} as {_q(alias)} on {_q(alias)}.{key} = {_q(base)}.{key}")
    schema, table = lookup.tables[base].split(".", 1)
    source = f"from {_q(schema)}.{_q(table)} as {_q(base)}" + "".join("\n" + j for j in joins)
    where = ("\nwhere " + "\n  and ".join(conditions)) if conditions else ""
    if spec.count_only:
        sql = f"select count(*) as customers\n{source}{where}"
        return Compiled(sql, tuple(params), ("customers",), None, {})
    limit = int(spec.limit or catalog.settings.limits.max_customers)
    sql = f"select {', '.join(select)}\n{source}{where}\norder by {_q(base)}.{key}\nlimit {limit}"
    return Compiled(sql, tuple(params), tuple(spec.fields), None, pii)
