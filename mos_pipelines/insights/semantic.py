"""Metric queries from the dbt semantic layer's definitions (``target/semantic_manifest.json``).

Insights ask for metrics by name (``conversion_rate``, ``roas``, ``cac``…) grouped by dimensions and
filtered, and get SQL compiled from the same definitions MetricFlow uses: a simple metric is its
measure's aggregation, a ratio metric ``sum(numerator) / nullif(sum(denominator), 0)``, a derived
metric its expression over other metrics. The SQL runs on the warehouse connection the asset already
holds (no MetricFlow process per query); each query also carries the equivalent ``mf query`` command,
and an integration test checks that both answer the same.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from mos_pipelines.settings import DBT_PROJECT_DIR

AGGREGATIONS = {
    "sum": "sum({})",
    "min": "min({})",
    "max": "max({})",
    "average": "avg({})",
    "count": "count({})",
    "count_distinct": "count(distinct {})",
    "sum_boolean": "sum(cast({} as integer))",
}
TIME_GRAINS = ("day", "week", "month", "quarter", "year")


class SemanticError(ValueError):
    """A metric or dimension the semantic layer does not define, or a definition this compiler cannot run."""


@dataclass(frozen=True)
class Filter:
    dimension: str
    op: str  # =, !=, in, not in, >=, <=, >, <
    value: Any

    def sql(self, column: str) -> str:
        if self.op in ("in", "not in"):
            values = ", ".join(_literal(v) for v in self.value)
            return f"{column} {self.op} ({values})"
        return f"{column} {self.op} {_literal(self.value)}"

    def mf(self, name: str) -> str:
        if self.op in ("in", "not in"):
            values = ", ".join(_literal(v) for v in self.value)
            return f"{{{{ {name} }}}} {self.op} ({values})"
        return f"{{{{ {name} }}}} {self.op} {_literal(self.value)}"


@dataclass(frozen=True)
class MetricQuery:
    """A compiled query: what was asked, the SQL, and the equivalent MetricFlow command."""

    metrics: tuple[str, ...]
    group_by: tuple[str, ...]
    filters: tuple[Filter, ...]
    sql: str
    mf_command: str
    columns: tuple[str, ...] = field(default=())

    def as_evidence(self) -> dict[str, Any]:
        return {
            "metrics": list(self.metrics),
            "group_by": list(self.group_by),
            "where": [{"dimension": f.dimension, "op": f.op, "value": f.value} for f in self.filters],
            "sql": self.sql,
            "mf_command": self.mf_command,
        }


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (datetime.date, datetime.datetime, pd.Timestamp)):
        return f"'{pd.Timestamp(value).date().isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SemanticLayer:
    """The semantic models and metrics of one ``semantic_manifest.json``."""

    def __init__(self, manifest: dict[str, Any], source: Path | None = None) -> None:
        self.source = source
        self.models = {m["name"]: m for m in manifest.get("semantic_models", [])}
        self.metrics = {m["name"]: m for m in manifest.get("metrics", [])}
        self.measure_model: dict[str, str] = {}
        for model in self.models.values():
            for measure in model.get("measures", []):
                self.measure_model[measure["name"]] = model["name"]

    @classmethod
    def load(cls, path: Path | None = None) -> SemanticLayer:
        """The project's semantic layer (``dbt parse`` writes it; ``mos run`` keeps it current)."""
        file = path or DBT_PROJECT_DIR / "target" / "semantic_manifest.json"
        if not file.exists():
            from mos_pipelines.transform.project import ensure_manifest

            ensure_manifest()
        try:
            return cls(json.loads(file.read_text()), file)
        except (OSError, json.JSONDecodeError) as exc:
            raise SemanticError(f"cannot read the semantic manifest {file}: {exc}") from exc

    # -- definitions --------------------------------------------------------------------------

    def metric(self, name: str) -> dict[str, Any]:
        if name not in self.metrics:
            raise SemanticError(
                f"the semantic layer defines no metric '{name}' (known: {', '.join(sorted(self.metrics))})"
            )
        return self.metrics[name]

    def label(self, name: str) -> str:
        return self.metric(name).get("label") or name

    def components(self, name: str) -> tuple[str, str] | None:
        """Numerator and denominator metric of a ratio metric (None for other types)."""
        metric = self.metric(name)
        if metric["type"] != "ratio":
            return None
        params = metric["type_params"]
        return params["numerator"]["name"], params["denominator"]["name"]

    def _expression(self, name: str, measures: set[str]) -> str:
        """SQL over aggregated measure columns that computes the metric."""
        metric = self.metric(name)
        kind, params = metric["type"], metric["type_params"]
        if metric.get("filter"):
            raise SemanticError(f"metric '{name}' has a filter; this compiler answers unfiltered metrics only")
        if kind == "simple":
            measure = params["measure"]
            if measure.get("filter") or measure.get("fill_nulls_with") is not None or measure.get("join_to_timespine"):
                raise SemanticError(
                    f"metric '{name}': measure options (filter, fill_nulls_with, join_to_timespine) are not supported"
                )
            measures.add(measure["name"])
            return _quote(measure["name"])
        if kind == "ratio":
            for side in ("numerator", "denominator"):
                if params[side].get("filter"):
                    raise SemanticError(f"metric '{name}': a filtered {side} is not supported")
            numerator = self._expression(params["numerator"]["name"], measures)
            denominator = self._expression(params["denominator"]["name"], measures)
            return f"cast({numerator} as double) / nullif({denominator}, 0)"
        if kind == "derived":
            inputs = {}
            for ref in params["metrics"]:
                if ref.get("filter") or ref.get("offset_window") or ref.get("offset_to_grain"):
                    raise SemanticError(f"metric '{name}': filtered or offset inputs are not supported")
                inputs[ref.get("alias") or ref["name"]] = f"({self._expression(ref['name'], measures)})"
            pattern = re.compile(
                r"\b(" + "|".join(re.escape(a) for a in sorted(inputs, key=len, reverse=True)) + r")\b"
            )
            return f"cast({pattern.sub(lambda m: inputs[m.group(1)], params['expr'])} as double)"
        raise SemanticError(
            f"metric '{name}' is of type {kind}; this compiler answers simple, ratio and derived metrics"
        )

    def _dimension(self, model: dict[str, Any], name: str) -> tuple[str, str, str]:
        """(SQL expression, output column, MetricFlow name) of a group-by dimension."""
        if name.startswith("metric_time"):
            grain = name.split("__", 1)[1] if "__" in name else "day"
            if grain not in TIME_GRAINS:
                raise SemanticError(f"time grain '{grain}' is not one of {', '.join(TIME_GRAINS)}")
            time_dim = model["defaults"]["agg_time_dimension"]
            column = self._dimension_expr(model, time_dim)
            return f"cast(date_trunc('{grain}', {column}) as date)", f"metric_time__{grain}", f"metric_time__{grain}"
        bare = name.split("__", 1)[1] if name.startswith(model["name"] + "__") else name
        return self._dimension_expr(model, bare), bare, f"{model['name']}__{bare}"

    @staticmethod
    def _dimension_expr(model: dict[str, Any], name: str) -> str:
        for dim in model.get("dimensions", []):
            if dim["name"] == name:
                return dim.get("expr") or _quote(dim["name"])
        known = ", ".join(d["name"] for d in model.get("dimensions", []))
        raise SemanticError(f"semantic model '{model['name']}' has no dimension '{name}' (known: {known})")

    # -- queries --------------------------------------------------------------------------------

    def query(
        self,
        metrics: list[str] | tuple[str, ...],
        group_by: list[str] | tuple[str, ...] = (),
        where: list[Filter] | tuple[Filter, ...] = (),
        with_components: bool = True,
        aliases: dict[str, str] | None = None,
    ) -> MetricQuery:
        """Compile metrics × dimensions × filters to one SQL statement over the semantic model's table.

        With ``with_components`` a ratio metric brings its numerator and denominator as columns too
        (interval estimates need them). ``aliases`` names a metric's output column (e.g.
        ``conversion_rate_by_segment`` as ``conversion_rate``), so one comparison reads metrics of
        several semantic models under the same column names."""
        aliases = aliases or {}
        wanted = list(dict.fromkeys(metrics))
        if with_components:
            for name in list(wanted):
                parts = self.components(name)
                if parts:
                    wanted += [p for p in parts if p not in wanted]
                if self.metric(name)["type"] == "derived":
                    wanted += [
                        r["name"] for r in self.metric(name)["type_params"]["metrics"] if r["name"] not in wanted
                    ]
        measures: set[str] = set()
        expressions = {name: self._expression(name, measures) for name in wanted}
        owners = {self.measure_model[m] for m in measures}
        if len(owners) != 1:
            raise SemanticError(f"metrics {', '.join(wanted)} span semantic models {sorted(owners)}; ask one at a time")
        model = self.models[owners.pop()]
        relation = model["node_relation"]
        table = f"{_quote(relation['schema_name'])}.{_quote(relation['alias'])}"
        dims = [self._dimension(model, g) for g in group_by]
        measure_defs = {m["name"]: m for m in model["measures"]}
        inner_cols = [f"{expr} as {_quote(col)}" for expr, col, _ in dims]
        for measure in sorted(measures):
            definition = measure_defs[measure]
            template = AGGREGATIONS.get(definition["agg"])
            if template is None:
                raise SemanticError(f"measure '{measure}' aggregates with {definition['agg']}, not supported")
            inner_cols.append(f"{template.format(definition.get('expr') or _quote(measure))} as {_quote(measure)}")
        conditions = []
        for f in where:
            expr, _, _ = self._dimension(model, f.dimension)
            conditions.append(f.sql(expr))
        sql = "with measures as (\n    select\n        " + ",\n        ".join(inner_cols) + f"\n    from {table}"
        if conditions:
            sql += "\n    where " + "\n      and ".join(conditions)
        if dims:
            sql += "\n    group by " + ", ".join(str(i + 1) for i in range(len(dims)))
        outer = [_quote(col) for _, col, _ in dims] + [
            f"{expressions[n]} as {_quote(aliases.get(n, n))}" for n in wanted
        ]
        sql += "\n)\nselect\n    " + ",\n    ".join(outer) + "\nfrom measures"
        if dims:
            sql += "\norder by " + ", ".join(_quote(col) for _, col, _ in dims)
        mf = [f"mf query --metrics {','.join(dict.fromkeys(metrics))}"]
        if dims:
            mf.append(f"--group-by {','.join(name for _, _, name in dims)}")
        for f in where:
            _, _, name = self._dimension(model, f.dimension)
            if name.startswith("metric_time"):
                ref = f"TimeDimension('metric_time', '{name.split('__', 1)[1]}')"
            else:
                ref = f"Dimension('{name}')"
            mf.append(f'--where "{f.mf(ref)}"')
        return MetricQuery(
            tuple(metrics),
            tuple(group_by),
            tuple(where),
            sql,
            " ".join(mf),
            tuple(col for _, col, _ in dims) + tuple(aliases.get(n, n) for n in wanted),
        )

    def model_of(self, metric: str) -> dict[str, Any]:
        """The semantic model a metric's measures come from."""
        measures: set[str] = set()
        self._expression(metric, measures)
        owners = {self.measure_model[m] for m in measures}
        if len(owners) != 1:
            raise SemanticError(f"metric '{metric}' spans semantic models {sorted(owners)}")
        return self.models[owners.pop()]

    def has_dimension(self, metric: str, dimension: str) -> bool:
        """Whether the metric can be grouped or filtered by the (categorical or time) dimension."""
        if dimension.startswith("metric_time"):
            return True
        return any(d["name"] == dimension for d in self.model_of(metric).get("dimensions", []))

    def metric_for(self, metric: str, dimension: str) -> str | None:
        """``metric`` when its semantic model has ``dimension``, else the project's ``<metric>_by_<dimension>``
        (the same metric over a model that has the dimension), else None."""
        if self.has_dimension(metric, dimension):
            return metric
        variant = f"{metric}_by_{dimension}"
        if variant in self.metrics and self.has_dimension(variant, dimension):
            return variant
        return None

    def run(self, con: duckdb.DuckDBPyConnection, query: MetricQuery) -> pd.DataFrame:
        return con.execute(query.sql).df()

    def time_bounds(self, con: duckdb.DuckDBPyConnection, metric: str) -> tuple[datetime.date, datetime.date] | None:
        """First and last day with any row under the metric's semantic model (None when empty)."""
        measures: set[str] = set()
        self._expression(metric, measures)
        model = self.models[self.measure_model[next(iter(measures))]]
        relation = model["node_relation"]
        column = self._dimension_expr(model, model["defaults"]["agg_time_dimension"])
        table = f"{_quote(relation['schema_name'])}.{_quote(relation['alias'])}"
        low, high = con.execute(f"select min({column}), max({column}) from {table}").fetchall()[0]
        if low is None:
            return None
        return pd.Timestamp(low).date(), pd.Timestamp(high).date()
