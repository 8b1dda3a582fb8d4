"""``mos mcp``: the assistant's read-only tools over the Model Context Protocol (stdio), so an outside agent can use
this warehouse as context — metric query, customer look-up, insights, audiences and the blueprint context
providers — with the same validation, roles and log as ``mos ask``.

Who is asking: the token in ``MOS_MCP_TOKEN`` (checked by ``mos_pipelines.access.authenticate``), else the user of
``--as``. Every tool call is answered through the same spec validation and read-only execution; none writes the
warehouse except the assistant log.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import duckdb

from mos_pipelines.access import AccessDenied, Principal, authenticate, principal
from mos_pipelines.assistant.core import Answer, _plain, ask
from mos_pipelines.assistant.execute import read_only, run
from mos_pipelines.assistant.spec import CustomerFilter, CustomerSpec, MetricFilter, MetricSpec, TimeRange
from mos_pipelines.settings import Settings, get_settings
from mos_pipelines.warehouse import WarehouseError, columns_of, table_exists


def resolve_principal(as_user: str | None, environ: dict[str, str] | None = None) -> Principal:
    environ = dict(os.environ) if environ is None else environ
    token = environ.get("MOS_MCP_TOKEN")
    if token:
        return authenticate(token, environ=environ)
    if as_user:
        return principal(as_user)
    raise AccessDenied(401, "Set MOS_MCP_TOKEN to a user's token (config/access.yaml) or pass --as USER.")


def _answer_dict(answer: Answer) -> dict[str, Any]:
    out = answer.to_dict()
    out.pop("params", None)
    return out


def _table(settings: Settings, relation: str, sql_of: Any, limit: int) -> dict[str, Any]:
    """Rows of a fixed query over a configured table (insights, audiences): ``sql_of(columns)`` writes it from the
    table's columns; nothing from the caller reaches the SQL but the limit."""
    schema, name = relation.split(".", 1)
    try:
        with read_only(settings.warehouse_path) as con:
            if not table_exists(con, schema, name):
                return {"available": False, "reason": f"{relation} is not in the warehouse (run `mos run`)"}
            sql = sql_of(set(columns_of(con, schema, name))) + f" limit {int(limit)}"
            names, rows, truncated = run(con, sql, (), int(limit), 5.0)
    except WarehouseError as exc:
        return {"available": False, "reason": str(exc)}
    except duckdb.Error as exc:
        return {"available": False, "reason": f"query failed: {str(exc).splitlines()[0]}"}
    return {"available": True, "columns": names, "rows": _plain([list(r) for r in rows]), "sql": sql}


def _insights_sql(columns: set[str]) -> str:
    wanted = [
        "insight_id",
        "insight_type",
        "statement",
        "call_to_action",
        "effect_size",
        "ci_low",
        "ci_high",
        "q_value",
        "impact_usd",
        "status",
        "created_at",
    ]
    cols = ", ".join(f'"{c}"' for c in wanted if c in columns) or "*"
    where = " where status = 'accepted'" if "status" in columns else ""
    order = ' order by "impact_usd" desc nulls last' if "impact_usd" in columns else ""
    return f"select {cols} from insights.insights{where}{order}"


def _audiences_sql(columns: set[str]) -> str:
    tier = ', "tier"' if "tier" in columns else ""
    score = ', avg("score") as mean_score' if "score" in columns else ""
    return (
        f'select "audience"{tier}, count(*) as customers{score} from ml.lookalike_scores '
        f'group by "audience"{tier} order by "audience"{tier}'
    )


def build_server(who: Principal, settings: Settings | None = None):
    """The MCP server (``mcp.server.mcpserver.MCPServer``) with the read-only tools, acting as ``who``."""
    from mcp.server.mcpserver import MCPServer

    settings = settings or get_settings()
    server = MCPServer(
        "mos-pipelines",
        instructions="Read-only marketing warehouse: metrics of the dbt semantic layer, governed customer look-ups, "
        "insights, audiences and blueprint context. Ask in plain words with `ask`, or pass a spec.",
    )

    @server.tool(description="Ask a question in plain words (metrics or customers); keeps a thread for follow-ups.")
    def ask_question(question: str, thread_id: str | None = None) -> dict[str, Any]:
        return _answer_dict(ask(question, principal=who, thread_id=thread_id, settings=settings, channel="mcp"))

    @server.tool(
        description="Metric query over the semantic layer: metrics, group_by (dimensions or "
        "metric_time__day/week/month), filters {dimension: [values]}, start/end dates, order, limit."
    )
    def metric_query(
        metrics: list[str],
        group_by: list[str] | None = None,
        filters: dict[str, list[str]] | None = None,
        start: str | None = None,
        end: str | None = None,
        order_by: str | None = None,
        descending: bool = True,
        limit: int | None = None,
    ) -> dict[str, Any]:
        try:
            spec = MetricSpec(
                metrics=tuple(metrics),
                group_by=tuple(group_by or ()),
                filters=tuple(MetricFilter(dimension=d, values=tuple(v)) for d, v in (filters or {}).items()),
                time_range=TimeRange(start=datetime.date.fromisoformat(start), end=datetime.date.fromisoformat(end))
                if start and end
                else None,
                order_by=order_by,
                descending=descending,
                limit=limit,
            )
        except ValueError as exc:
            return {"kind": "refusal", "reason": str(exc).splitlines()[0]}
        return _answer_dict(_spec_answer(spec, who, settings))

    @server.tool(
        description="Customer look-up over the governed customer fields: fields, filters "
        "{field: [values]}, count_only, limit. PII is masked unless your role may see it."
    )
    def customer_lookup(
        filters: dict[str, list[str]] | None = None,
        fields: list[str] | None = None,
        count_only: bool = False,
        limit: int | None = None,
    ) -> dict[str, Any]:
        try:
            spec = CustomerSpec(
                fields=tuple(fields or ()),
                filters=tuple(CustomerFilter(field=f, values=tuple(v)) for f, v in (filters or {}).items()),
                count_only=count_only,
                limit=limit,
            )
        except ValueError as exc:
            return {"kind": "refusal", "reason": str(exc).splitlines()[0]}
        return _answer_dict(_spec_answer(spec, who, settings))

    @server.tool(description="Accepted insights, largest impact first (insights.insights).")
    def insights(limit: int = 10) -> dict[str, Any]:
        return _table(settings, "insights.insights", _insights_sql, max(1, min(limit, 100)))

    @server.tool(description="Lookalike audiences: customers per audience and tier, mean score (ml.lookalike_scores).")
    def audiences(limit: int = 200) -> dict[str, Any]:
        return _table(settings, "ml.lookalike_scores", _audiences_sql, max(1, min(limit, 500)))

    try:
        from mos_pipelines.blueprint.context import PROVIDERS, Context, as_of
        from mos_pipelines.configuration import load_blueprint
    except ImportError:  # pragma: no cover - the blueprint package is part of the project
        PROVIDERS = {}

    def context_tool(provider: Any) -> Any:
        def call(arguments: dict[str, Any] | None = None) -> dict[str, Any]:
            bp = load_blueprint()
            try:
                with read_only(settings.warehouse_path) as con:
                    ctx = Context(con, bp, as_of(con, bp))
                    return _plain(provider(ctx, **(arguments or {})).as_dict())
            except (WarehouseError, ValueError) as exc:
                return {"provider": provider.name, "available": False, "reason": str(exc).splitlines()[0]}

        return call

    for provider in PROVIDERS.values():
        server.tool(
            name=f"context_{provider.name}",
            description=f"{provider.description} Arguments (JSON object): "
            f"{', '.join(provider.parameters.model_json_schema().get('properties', {})) or 'none'}.",
        )(context_tool(provider))
    return server


def _spec_answer(spec: MetricSpec | CustomerSpec, who: Principal, settings: Settings) -> Answer:
    """A spec given directly (not a question): validated, compiled and logged exactly like a parsed one."""
    from mos_pipelines.assistant.core import spec_answer

    return spec_answer(spec, who, settings, channel="mcp")


def serve(who: Principal, settings: Settings | None = None) -> None:
    build_server(who, settings).run("stdio")
