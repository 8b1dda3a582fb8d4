"""Context providers: the only way the planner sees the warehouse.

Each provider is a tool (a name, a description, typed parameters, a JSON-serialisable result that carries the SQL
behind it), so the conversational assistant can call the same functions later. A provider whose table or column
is missing returns a fact that says "not available: <reason>" instead of raising: a partial warehouse still plans
with what it has.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from mos_pipelines.blueprint.objective import SegmentFilter, Vocabulary
from mos_pipelines.blueprint.rates import gamma_rate_interval
from mos_pipelines.configuration.blueprint import BlueprintSettings
from mos_pipelines.warehouse import columns_of, table_exists

CONSENT_PURPOSES = ("email_marketing", "ad_personalization")


@dataclass
class Fact:
    """What a provider found: its value, the queries behind it, or why it is not available."""

    provider: str
    value: Any = None
    queries: list[dict[str, Any]] = field(default_factory=list)  # {"sql": ..., "params": [...]}
    available: bool = True
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": self.provider, "available": self.available}
        if self.available:
            out["value"] = self.value
        else:
            out["reason"] = f"not available: {self.reason}"
        out["queries"] = self.queries
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fact:
        """A fact as ``as_dict`` wrote it (the blueprint's ``<id>.context.json``)."""
        return cls(
            provider=data["provider"],
            value=data.get("value"),
            queries=list(data.get("queries", [])),
            available=bool(data.get("available", True)),
            reason=str(data.get("reason", "")).removeprefix("not available: "),
        )


class Missing(Exception):
    """A table or column a provider needs is not in the warehouse."""


def _split(relation: str) -> tuple[str, str]:
    schema, table = relation.split(".", 1)
    return schema, table


def require(con: duckdb.DuckDBPyConnection, relation: str, columns: tuple[str, ...] = ()) -> set[str]:
    """The relation's columns; ``Missing`` naming what a provider needs and the warehouse lacks."""
    schema, table = _split(relation)
    if not table_exists(con, schema, table):
        raise Missing(f"{relation} is not in the warehouse (build it with `mos run`)")
    have = set(columns_of(con, schema, table))
    lacking = [c for c in columns if c not in have]
    if lacking:
        raise Missing(f"{relation} has no column {', '.join(lacking)}")
    return have


def query(
    con: duckdb.DuckDBPyConnection, fact: Fact, sql: str, params: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Run ``sql``, record it on ``fact``, and return its rows as dicts."""
    sql = " ".join(sql.split())
    fact.queries.append({"sql": sql, "params": [_plain(p) for p in params or []]})
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, (_plain(v) for v in row), strict=True)) for row in cursor.fetchall()]


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy / decimal scalars
        return value.item()
    if value.__class__.__name__ == "Decimal":
        return float(value)
    return value


def segment_predicate(
    segment: tuple[SegmentFilter, ...], columns: set[str] | None = None, alias: str = ""
) -> tuple[str, list[Any], list[str]]:
    """SQL over the segment's dimensions (AND across dimensions, OR within one), its parameters, and the
    dimensions left out because ``columns`` lacks them."""
    parts: list[str] = []
    params: list[Any] = []
    skipped: list[str] = []
    prefix = f"{alias}." if alias else ""
    for f in segment:
        if columns is not None and f.dimension not in columns:
            skipped.append(f.dimension)
            continue
        parts.append(f"{prefix}{f.dimension} in ({', '.join('?' for _ in f.values)})")
        params.extend(f.values)
    return (" and ".join(parts) or "true"), params, skipped


# -- what the warehouse knows about itself ------------------------------------------------------------------------


def vocabulary(con: duckdb.DuckDBPyConnection, settings: BlueprintSettings) -> Vocabulary:
    """The values each segment dimension has in the warehouse, and the channels with activity."""
    values: dict[str, tuple[str, ...]] = {}
    table = settings.segments.table
    schema, name = _split(table)
    if table_exists(con, schema, name):
        have = set(columns_of(con, schema, name))
        for dimension in settings.segments.dimensions:
            if dimension in have:
                rows = con.execute(
                    f"select distinct cast({dimension} as varchar) from {table} "
                    f"where {dimension} is not null order by 1"
                ).fetchall()
                values[dimension] = tuple(r[0] for r in rows)
    channels: tuple[str, ...] = ()
    schema, name = _split(settings.goal.channel_table)
    if table_exists(con, schema, name) and "channel" in columns_of(con, schema, name):
        channels = tuple(
            r[0]
            for r in con.execute(
                f"select distinct channel from {settings.goal.channel_table} where channel is not null order by 1"
            ).fetchall()
        )
    return Vocabulary(values, channels)


def as_of(con: duckdb.DuckDBPyConnection, settings: BlueprintSettings) -> datetime.date | None:
    """The data's latest day: the channel table's last day, else the segment table's ``as_of_at``; None for an
    empty warehouse. Every trailing window ends here (never at today's date)."""
    schema, name = _split(settings.goal.channel_table)
    if table_exists(con, schema, name) and "date_day" in columns_of(con, schema, name):
        day = con.execute(f"select max(date_day) from {settings.goal.channel_table}").fetchall()[0][0]
        if day is not None:
            return day
    schema, name = _split(settings.segments.table)
    if table_exists(con, schema, name) and "as_of_at" in columns_of(con, schema, name):
        at = con.execute(f"select max(as_of_at) from {settings.segments.table}").fetchall()[0][0]
        if at is not None:
            return at.date()
    return None


# -- the providers ------------------------------------------------------------------------------------------------


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentParams(Params):
    segment: tuple[SegmentFilter, ...] = Field((), description="filters on segment dimensions (AND across, OR within)")


class MetricParams(SegmentParams):
    metric: str = Field(description="a goal metric of config/blueprint.yaml, e.g. paying_customers")
    weeks: int = Field(8, ge=1, le=104, description="weeks of trend")


class WindowParams(SegmentParams):
    window_days: int | None = Field(None, ge=1, description="trailing days (default: goal.window_days)")
    measure: str = Field("new_customers", description="the outcome column bought (new_customers, conversions)")


class LimitParams(Params):
    limit: int = Field(10, ge=1, le=100)


@dataclass(frozen=True)
class Context:
    con: duckdb.DuckDBPyConnection
    settings: BlueprintSettings
    as_of: datetime.date | None


def goal_baseline(ctx: Context, p: MetricParams, fact: Fact) -> Any:
    metric = ctx.settings.metrics.get(p.metric)
    if metric is None:
        raise Missing(
            f"no goal metric {p.metric!r} in config/blueprint.yaml (known: {', '.join(ctx.settings.metrics)})"
        )
    table = ctx.settings.segments.table
    require(ctx.con, table, (metric.joined_at,))
    where, params, skipped = segment_predicate(p.segment, set(columns_of(ctx.con, *_split(table))))
    if skipped:
        raise Missing(f"{table} has no column {', '.join(skipped)} to filter the segment")
    rows = query(ctx.con, fact, f"select count(*) as n from {table} where ({metric.where}) and {where}", params)
    baseline = int(rows[0]["n"])
    weekly: list[dict[str, Any]] = []
    if ctx.as_of is not None:
        end = ctx.as_of + datetime.timedelta(days=1)
        start = end - datetime.timedelta(weeks=p.weeks)
        weekly = query(
            ctx.con,
            fact,
            f"""
            select cast(floor(date_diff('day', cast(? as date), cast({metric.joined_at} as date)) / 7) as integer) as week,
                   count(*) as joined
            from {table}
            where ({metric.where}) and {where} and {metric.joined_at} >= cast(? as date)
              and {metric.joined_at} < cast(? as date)
            group by 1 order by 1""",
            [start, *params, start, end],
        )
        by_week = {r["week"]: int(r["joined"]) for r in weekly}
        weekly = [
            {"week_start": (start + datetime.timedelta(weeks=w)).isoformat(), "joined": by_week.get(w, 0)}
            for w in range(p.weeks)
        ]
    per_week = sum(w["joined"] for w in weekly) / len(weekly) if weekly else None
    return {
        "metric": p.metric,
        "description": metric.description,
        "baseline": baseline,
        "joined_per_week": None if per_week is None else round(per_week, 2),
        "weekly": weekly,
    }


def segment_size(ctx: Context, p: SegmentParams, fact: Fact) -> Any:
    table = ctx.settings.segments.table
    require(ctx.con, table, ("customer_id",))
    have = set(columns_of(ctx.con, *_split(table)))
    where, params, skipped = segment_predicate(p.segment, have)
    if skipped:
        raise Missing(f"{table} has no column {', '.join(skipped)} to filter the segment")
    consent_columns = [c for c in (f"is_{purpose}_consented" for purpose in CONSENT_PURPOSES) if c in have]
    select = ", ".join(
        [
            "count(*) as customers",
            *(
                f"count(*) filter (where {c}) as {c.removeprefix('is_').removesuffix('_consented')}"
                for c in consent_columns
            ),
        ]
    )
    paying = ", count(*) filter (where order_count > 0) as paying" if "order_count" in have else ""
    row = query(ctx.con, fact, f"select {select}{paying} from {table} where {where}", params)[0]
    reachable = {purpose: (int(row[purpose]) if purpose in row else None) for purpose in CONSENT_PURPOSES}
    out = {"customers": int(row["customers"]), "reachable_with_consent": reachable}
    if paying:
        out["paying"] = int(row["paying"])
        if consent_columns:
            counts = ", ".join(
                f"count(*) filter (where {c}) as {c.removeprefix('is_').removesuffix('_consented')}"
                for c in consent_columns
            )
            row = query(
                ctx.con, fact, f"select {counts} from {table} where {where} and coalesce(order_count, 0) = 0", params
            )[0]
            out["reachable_not_paying"] = {purpose: int(n) for purpose, n in row.items()}
            if "email_marketing" in row:
                out["emailable_not_paying"] = int(row["email_marketing"])
    missing = [purpose for purpose, n in reachable.items() if n is None]
    if missing:
        out["note"] = f"no consent column for {', '.join(missing)} in {table}: reach unknown"
    return out


@dataclass(frozen=True)
class _ChannelWindow:
    table: str
    have: set[str]
    where: str
    params: list[Any]
    skipped: list[str]
    start: datetime.date
    end: datetime.date
    days: int


def _channel_window(ctx: Context, p: WindowParams, required: tuple[str, ...]) -> _ChannelWindow:
    """The channel table, its columns, the segment's predicate (and the dimensions it lacks) and the window, for a
    provider over channel days; a missing table, column or day raises ``Missing``."""
    table = ctx.settings.goal.channel_table
    require(ctx.con, table, required)
    if ctx.as_of is None:
        raise Missing(f"{table} has no days")
    have = set(columns_of(ctx.con, *_split(table)))
    where, params, skipped = segment_predicate(p.segment, have)
    days = p.window_days or ctx.settings.goal.window_days
    start = ctx.as_of - datetime.timedelta(days=days - 1)
    return _ChannelWindow(table, have, where, list(params), list(skipped), start, ctx.as_of, days)


def channel_rates(ctx: Context, p: WindowParams, fact: Fact) -> Any:
    w = _channel_window(ctx, p, ("date_day", "channel", "cost_usd", p.measure))
    table, have, where, params, skipped, start, end = w.table, w.have, w.where, w.params, w.skipped, w.start, w.end
    extra = [c for c in ("sends", "revenue_usd", "spend_usd") if c in have]
    rows = query(
        ctx.con,
        fact,
        f"""
        select channel, sum(cost_usd) as cost_usd, sum({p.measure}) as outcomes,
               count(distinct date_day) filter (where cost_usd > 0) as days_with_cost
               {"".join(f", sum({c}) as {c}" for c in extra)}
        from {table}
        where date_day between cast(? as date) and cast(? as date) and {where}
        group by channel order by channel""",
        [start, end, *params],
    )
    level = ctx.settings.goal.interval
    channels = []
    for r in rows:
        cost = float(r["cost_usd"] or 0)
        outcomes = float(r["outcomes"] or 0)
        item: dict[str, Any] = {
            "channel": r["channel"],
            "cost_usd": round(cost, 2),
            "outcomes": round(outcomes, 3),
            "days_with_cost": int(r["days_with_cost"] or 0),
        }
        if cost <= 0:
            item["skipped"] = "no cost in the window (organic or unpaid): not something a budget buys"
            channels.append(item)
            continue
        lo, mean, hi = gamma_rate_interval(
            outcomes, cost, ctx.settings.goal.prior_shape, ctx.settings.goal.prior_cost_usd, level
        )
        item.update(
            {
                "per_dollar": {"mean": mean, "lower": lo, "upper": hi},
                "cac_usd": {"mean": _inv(mean), "lower": _inv(hi), "upper": _inv(lo)},
                "daily_cost_usd": round(cost / w.days, 2),
            }
        )
        if r.get("sends"):
            item["sends"] = int(r["sends"])
            item["cost_per_send_usd"] = round(cost / float(r["sends"]), 6)
        if "revenue_usd" in r and r["revenue_usd"] is not None and outcomes > 0:
            per_outcome = float(r["revenue_usd"]) / outcomes
            item["roi"] = {
                "mean": round(mean * per_outcome - 1, 4),
                "lower": round(lo * per_outcome - 1, 4),
                "upper": round(hi * per_outcome - 1, 4),
            }
        channels.append(item)
    note = ""
    if skipped:
        note = f"{table} has no column {', '.join(skipped)}: rates are over every value of it"
    return {
        "window": {"start": start.isoformat(), "end": end.isoformat(), "days": w.days},
        "measure": p.measure,
        "interval": level,
        "channels": channels,
        **({"note": note} if note else {}),
    }


def _inv(x: float) -> float | None:
    return round(1 / x, 2) if x > 0 else None


def lookalike_pool(ctx: Context, p: SegmentParams, fact: Fact) -> Any:
    require(ctx.con, "ml.lookalike_scores", ("customer_id", "audience", "tier"))
    table = ctx.settings.segments.table
    have = set(columns_of(ctx.con, *_split(table))) if table_exists(ctx.con, *_split(table)) else set()
    where, params, skipped = segment_predicate(p.segment, have or None, alias="c")
    if skipped or not have:
        raise Missing(f"{table} is needed to put lookalike scores in the segment")
    rows = query(
        ctx.con,
        fact,
        f"""
        select s.audience, s.tier, count(*) as customers
        from ml.lookalike_scores s
        join {table} c on c.customer_id = s.customer_id
        where {where} and s.tier is not null
        group by 1, 2 order by 1, 2""",
        params,
    )
    audiences: dict[str, dict[str, int]] = {}
    for r in rows:
        audiences.setdefault(r["audience"], {})[str(r["tier"])] = int(r["customers"])
    return {"audiences": audiences}


def bandit_winners(ctx: Context, p: Params, fact: Fact) -> Any:
    require(
        ctx.con,
        "experiments.bandit_allocations",
        ("allocation_date", "experiment_id", "segment", "variant_id", "prob_best", "posterior_mean"),
    )
    rows = query(
        ctx.con,
        fact,
        """
        with latest as (
            select experiment_id, max(allocation_date) as allocation_date
            from experiments.bandit_allocations group by 1
        ), ranked as (
            select b.experiment_id, b.segment, b.variant_id, b.prob_best, b.posterior_mean, b.allocation_date,
                   row_number() over (partition by b.experiment_id, b.segment
                                      order by b.prob_best desc, b.variant_id) as rank
            from experiments.bandit_allocations b
            join latest l on l.experiment_id = b.experiment_id and l.allocation_date = b.allocation_date
        )
        select experiment_id, segment, variant_id, prob_best, posterior_mean, allocation_date
        from ranked where rank = 1 order by experiment_id, segment""",
    )
    return {"winners": rows}


def response_curves(ctx: Context, p: Params, fact: Fact) -> Any:
    """The marketing mix model's diminishing returns, when its latest fit converged: per channel the weekly outcome
    at multiples of its mean weekly spend, relative to the outcome at 1× (``ml.mmm_response_curves``). A channel the
    data did not size (ROI interval wider than ``MAX_ROI_SPREAD``×, as the budget's gate) is left out and named in
    ``linear_channels``: the planner keeps it linear."""
    require(ctx.con, "ml.mmm_fits", ("fit_id", "status", "fitted_at"))
    fits = query(
        ctx.con, fact, "select fit_id, status, reason from ml.mmm_fits order by fitted_at desc, fit_id limit 1"
    )
    latest = fits[0] if fits else None
    if latest is None or latest["status"] != "fitted":
        why = "no fit yet" if latest is None else f"the latest fit is {latest['status']}: {latest['reason']}"
        raise Missing(f"no converged marketing mix model ({why})")
    require(ctx.con, "ml.mmm_response_curves", ("channel", "spend_multiple", "weekly_contribution_mean"))
    rows = query(
        ctx.con,
        fact,
        "select channel, spend_multiple, weekly_contribution_mean from ml.mmm_response_curves "
        "order by channel, spend_multiple",
    )
    curves: dict[str, list[list[float]]] = {}
    for r in rows:
        curves.setdefault(r["channel"], []).append([float(r["spend_multiple"]), float(r["weekly_contribution_mean"])])
    relative = {}
    for channel, points in curves.items():
        at_one = next((y for x, y in points if abs(x - 1.0) < 1e-9), None)
        if at_one and at_one > 0:
            relative[channel] = [[x, round(y / at_one, 6)] for x, y in points]
    if not relative:
        raise Missing("the marketing mix model's curves are empty or flat at the observed spend")
    from mos_pipelines.mmm.tables import MAX_ROI_SPREAD, unsized_channels

    unsized = unsized_channels(ctx.con, set(relative))  # their curve is the prior's: those channels stay linear
    relative = {channel: points for channel, points in relative.items() if channel not in unsized}
    if not relative:
        raise Missing(
            f"the marketing mix model sized no channel (every ROI interval spans more than {MAX_ROI_SPREAD:.0f}×: "
            + "; ".join(f"{c} {why}" for c, why in unsized.items())
            + ")"
        )
    out: dict[str, Any] = {"fit_id": latest["fit_id"], "relative_response": relative}
    if unsized:
        out["linear_channels"] = unsized
    return out


def open_insights(ctx: Context, p: LimitParams, fact: Fact) -> Any:
    require(ctx.con, "insights.insights", ("insight_id", "insight_type", "statement", "status"))
    have = set(columns_of(ctx.con, "insights", "insights"))
    order = "impact_usd desc nulls last, insight_id" if "impact_usd" in have else "insight_id"
    rows = query(
        ctx.con,
        fact,
        f"""
        select insight_id, insight_type, statement {", call_to_action" if "call_to_action" in have else ""}
        from insights.insights where status = 'accepted' order by {order} limit ?""",
        [p.limit],
    )
    return {"insights": rows}


def spend_to_date(ctx: Context, p: WindowParams, fact: Fact) -> Any:
    w = _channel_window(ctx, p, ("date_day", "channel", "cost_usd"))
    table, where, params, skipped, start, end = w.table, w.where, w.params, w.skipped, w.start, w.end
    rows = query(
        ctx.con,
        fact,
        f"""
        select channel, sum(cost_usd) as cost_usd,
               sum(cost_usd) filter (where date_day >= cast(? as date)) as cost_usd_window
        from {table} where {where} group by channel having sum(cost_usd) > 0 order by channel""",
        [start, *params],
    )
    note = {"note": f"{table} has no column {', '.join(skipped)}: spend over every value of it"} if skipped else {}
    return {
        **note,
        "window_start": start.isoformat(),
        "end": end.isoformat(),
        "channels": [
            {
                "channel": r["channel"],
                "cost_usd": round(float(r["cost_usd"]), 2),
                "cost_usd_window": round(float(r["cost_usd_window"] or 0), 2),
            }
            for r in rows
        ],
        "total_usd": round(sum(float(r["cost_usd"]) for r in rows), 2),
    }


@dataclass(frozen=True)
class Provider:
    """A context provider as a tool: name, description, typed parameters, a JSON-serialisable fact."""

    name: str
    description: str
    parameters: type[Params]
    function: Callable[[Context, Any, Fact], Any]

    def tool(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters.model_json_schema()}

    def __call__(self, ctx: Context, **arguments: Any) -> Fact:
        params = self.parameters.model_validate(arguments)
        fact = Fact(self.name)
        try:
            fact.value = self.function(ctx, params, fact)
        except Missing as exc:
            fact.available, fact.reason, fact.value = False, str(exc), None
        except duckdb.Error as exc:  # e.g. a metric's `where` naming a column the table lacks
            fact.available, fact.reason, fact.value = False, f"query failed: {str(exc).splitlines()[0]}", None
        return fact


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "goal_baseline",
            "Current value of a goal metric in a segment, and how many customers joined it per "
            "week over the trailing weeks.",
            MetricParams,
            goal_baseline,
        ),
        Provider(
            "segment_size",
            "Customers in a segment, paying customers, and how many can be reached with consent "
            "(email marketing, ad personalisation).",
            SegmentParams,
            segment_size,
        ),
        Provider(
            "channel_rates",
            "Per channel over a trailing window: cost, outcomes bought (new customers by default), "
            "customers per dollar and CAC with a Gamma-Poisson interval, ROI with its interval.",
            WindowParams,
            channel_rates,
        ),
        Provider(
            "lookalike_pool",
            "Customers of the segment in each lookalike audience tier (ml.lookalike_scores).",
            SegmentParams,
            lookalike_pool,
        ),
        Provider(
            "bandit_winners",
            "The variant most likely best in each experiment and segment at the bandit's latest "
            "allocation (experiments.bandit_allocations).",
            Params,
            bandit_winners,
        ),
        Provider(
            "response_curves",
            "The marketing mix model's diminishing returns per channel (outcome at multiples of the current weekly "
            "spend, relative to today's), when its latest fit converged (ml.mmm_response_curves); channels the data "
            "did not size (ROI interval wider than 20x) are left linear and named.",
            Params,
            response_curves,
        ),
        Provider(
            "open_insights", "Accepted insights, largest impact first (insights.insights).", LimitParams, open_insights
        ),
        Provider(
            "spend_to_date",
            "Cost by channel since the data starts and over the trailing window.",
            WindowParams,
            spend_to_date,
        ),
    )
}


def tools() -> list[dict[str, Any]]:
    """Every provider as a tool description (name, description, JSON schema of its parameters)."""
    return [p.tool() for p in PROVIDERS.values()]


def gather(ctx: Context, metric: str, segment: tuple[SegmentFilter, ...]) -> dict[str, Fact]:
    """Every fact the planner reads for one objective."""
    measure = ctx.settings.metrics[metric].bought_by
    return {
        "goal_baseline": PROVIDERS["goal_baseline"](ctx, metric=metric, segment=segment),
        "segment_size": PROVIDERS["segment_size"](ctx, segment=segment),
        "channel_rates": PROVIDERS["channel_rates"](ctx, segment=segment, measure=measure),
        "lookalike_pool": PROVIDERS["lookalike_pool"](ctx, segment=segment),
        "bandit_winners": PROVIDERS["bandit_winners"](ctx),
        "open_insights": PROVIDERS["open_insights"](ctx, limit=5),
        "spend_to_date": PROVIDERS["spend_to_date"](ctx, segment=segment),
        "response_curves": PROVIDERS["response_curves"](ctx),
    }
