"""ICP fit and engagement → tiers A–D, per customer (``policy.icp_scores``).

Fit: the firmographic rules of ``icp.fit_rules`` over ``marts.dim_customer_features``; ``fit_score`` = 100 × the
weights of the rules that fired / the weights of the rules evaluated. Engagement: every action of a signal counts
``weight × 2^(−age / half_life_days)``, age in days before the data's as-of time. The tier comes from the two
levels through ``icp.tiers.matrix``. A rule or signal the warehouse cannot evaluate (a missing column or
relation, a type that does not compare) is skipped with the reason and the rest are scored.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from mos_pipelines.configuration.policy import LEVELS, FitRule, IcpSettings, Signal, Thresholds
from mos_pipelines.policy.tables import ensure_tables, naive_utc
from mos_pipelines.skipped import SkippedPart
from mos_pipelines.warehouse import columns_of, insert_frame, scalar, table_exists, transaction

FEATURES = ("marts", "dim_customer_features")


class PolicyInputMissing(RuntimeError):
    """A table the policy cannot do without is absent."""


@dataclass
class IcpResult:
    scores: pd.DataFrame
    skipped: list[SkippedPart] = field(default_factory=list)
    evaluated_rules: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    as_of_at: datetime.datetime | None = None


def literal(value: object) -> str:
    """A SQL literal for a rule value (text quoted, booleans and numbers as they are)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def rule_predicate(rule: FitRule) -> str:
    column = f'"{rule.column}"'
    if rule.values is not None:
        return f"{column} in ({', '.join(literal(v) for v in rule.values)})"
    parts = []
    if rule.min is not None:
        parts.append(f"{column} >= {rule.min!r}")
    if rule.max is not None:
        parts.append(f"{column} <= {rule.max!r}")
    return " and ".join(parts)


def _runs(con: duckdb.DuckDBPyConnection, sql: str) -> str | None:
    """None when ``sql`` runs (columns exist, values compare), else DuckDB's reason."""
    try:
        con.execute(sql).fetchall()
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    return None


def usable_rules(con: duckdb.DuckDBPyConnection, rules: tuple[FitRule, ...]) -> tuple[list[FitRule], list[SkippedPart]]:
    """The rules the features table can evaluate, and the others with their reason."""
    columns = set(columns_of(con, *FEATURES))
    usable, skipped = [], []
    for rule in rules:
        if rule.column not in columns:
            skipped.append(
                SkippedPart(
                    f"fit_rule:{rule.name}",
                    f"column {rule.column!r} is not in marts.dim_customer_features; the rule is left out of the fit "
                    "score (its weight too)",
                )
            )
            continue
        error = _runs(con, f"select count(*) filter (where {rule_predicate(rule)}) from marts.dim_customer_features")
        if error:
            skipped.append(
                SkippedPart(f"fit_rule:{rule.name}", f"cannot evaluate {rule.describe()} ({error}); left out")
            )
            continue
        usable.append(rule)
    return usable, skipped


def usable_signals(
    con: duckdb.DuckDBPyConnection, signals: tuple[Signal, ...]
) -> tuple[list[Signal], list[SkippedPart]]:
    usable, skipped = [], []
    for signal in signals:
        schema, table = signal.relation.split(".")
        if not table_exists(con, schema, table):
            skipped.append(
                SkippedPart(f"signal:{signal.name}", f"{signal.relation} does not exist; the signal counts nothing")
            )
            continue
        columns = set(columns_of(con, schema, table))
        missing = [c for c in (signal.customer_column, signal.time_column) if c not in columns]
        if missing:
            skipped.append(
                SkippedPart(
                    f"signal:{signal.name}",
                    f"{signal.relation} has no column {', '.join(map(repr, missing))}; the signal counts nothing",
                )
            )
            continue
        probe = _signal_sql(
            signal, '(select max(cast("' + signal.time_column + '" as timestamp)) from ' + signal.relation + ")", 1.0, 1
        )
        error = _runs(con, f"select max(points) from ({probe})")
        if error:
            skipped.append(SkippedPart(f"signal:{signal.name}", f"cannot read {signal.relation} ({error})"))
            continue
        usable.append(signal)
    return usable, skipped


def _signal_sql(signal: Signal, as_of: str, half_life_days: float, lookback_days: int) -> str:
    age_days = f"date_diff('second', cast(\"{signal.time_column}\" as timestamp), {as_of}) / 86400.0"
    where = f"({signal.where})" if signal.where else "true"
    return f"""
        select cast("{signal.customer_column}" as varchar) as customer_id, '{signal.name}' as signal,
               {signal.weight!r} * pow(0.5, {age_days} / {half_life_days!r}) as points
        from {signal.relation}
        where {where} and "{signal.customer_column}" is not null
          and cast("{signal.time_column}" as timestamp) <= {as_of}
          and cast("{signal.time_column}" as timestamp) > {as_of} - interval {lookback_days} day"""


def as_of(con: duckdb.DuckDBPyConnection, signals: list[Signal]) -> datetime.datetime | None:
    """The end of the engagement window: the features' ``as_of_at`` (the data's latest activity), else the latest
    time among the signals. Never now(): the same data gives the same scores."""
    if "as_of_at" in columns_of(con, *FEATURES):
        value = scalar(con, "select max(as_of_at) from marts.dim_customer_features")
        if value is not None:
            return value
    latest = [scalar(con, f'select max(cast("{s.time_column}" as timestamp)) from {s.relation}') for s in signals]
    latest = [v for v in latest if v is not None]
    return max(latest) if latest else None


def score(con: duckdb.DuckDBPyConnection, settings: IcpSettings, version: str, now: datetime.datetime) -> IcpResult:
    """ICP scores of every customer of ``marts.dim_customer_features``."""
    if not table_exists(con, *FEATURES):
        raise PolicyInputMissing("marts.dim_customer_features does not exist: build the customer marts first")
    rules, skipped = usable_rules(con, settings.fit_rules)
    signals, skipped_signals = usable_signals(con, settings.engagement.signals)
    skipped += skipped_signals
    end = as_of(con, signals)
    columns = set(columns_of(con, *FEATURES))
    account = '"account_key"' if "account_key" in columns else "cast(null as varchar)"

    fired = [f"case when coalesce({rule_predicate(r)}, false) then '{r.name}' end" for r in rules]
    weights = " + ".join(f"case when coalesce({rule_predicate(r)}, false) then {r.weight!r} else 0 end" for r in rules)
    total = sum(r.weight for r in rules)
    fit_score = f"100.0 * ({weights}) / {total!r}" if rules else "cast(null as double)"
    fired_list = f"list_filter([{', '.join(fired)}], lambda x: x is not null)" if fired else "cast([] as varchar[])"

    if signals and end is not None:
        end_sql = f"timestamp '{end.isoformat(sep=' ')}'"
        union = " union all ".join(
            _signal_sql(s, end_sql, settings.engagement.half_life_days, settings.engagement.lookback_days)
            for s in signals
        )
        engagement = f"""
            per_signal as (select customer_id, signal, sum(points) as points from ({union}) group by all),
            engagement as (
                select customer_id, sum(points) as engagement_score,
                       string_agg(signal || '=' || printf('%.2f', points), '; ' order by signal) as engagement_terms
                from per_signal group by customer_id
            )"""
    else:
        engagement = """
            engagement as (
                select cast(null as varchar) as customer_id, cast(0 as double) as engagement_score,
                       cast(null as varchar) as engagement_terms where false
            )"""

    t = settings.tiers

    def level(expression: str, thresholds: Thresholds) -> str:
        return (
            f"case when {expression} >= {thresholds.high!r} then 'high' "
            f"when {expression} >= {thresholds.medium!r} then 'medium' else 'low' end"
        )

    tier_cases = " ".join(
        f"when fit_level = '{f}' and engagement_level = '{e}' then '{t.matrix.tier(f, e)}'"
        for f in LEVELS
        for e in LEVELS
    )
    sql = f"""
        with {engagement.strip()},
        fit as (
            select cast(customer_id as varchar) as customer_id, {account} as account_key,
                   {fit_score} as fit_score, {fired_list} as fit_rules_fired
            from marts.dim_customer_features
        ),
        scored as (
            select fit.customer_id, fit.account_key, fit.fit_score,
                   coalesce(engagement.engagement_score, 0) as engagement_score,
                   {level("coalesce(fit.fit_score, 0)", t.fit)} as fit_level,
                   {level("coalesce(engagement.engagement_score, 0)", t.engagement)} as engagement_level,
                   fit.fit_rules_fired, engagement.engagement_terms
            from fit left join engagement on fit.customer_id = engagement.customer_id
        )
        select *, case {tier_cases} end as tier from scored order by customer_id"""
    frame = con.execute(sql).df()
    frame["fit_rules_evaluated"] = [[r.name for r in rules]] * len(frame)
    frame["as_of_at"] = pd.Timestamp(end) if end is not None else pd.NaT
    frame["scored_at"] = pd.Timestamp(naive_utc(now))
    frame["policy_version"] = version
    return IcpResult(frame, skipped, [r.name for r in rules], [s.name for s in signals], end)


def write(con: duckdb.DuckDBPyConnection, result: IcpResult) -> None:
    """Replace ``policy.icp_scores`` with these scores (one row per customer: the current scores)."""
    ensure_tables(con)
    with transaction(con):
        con.execute("delete from policy.icp_scores")
        if len(result.scores):
            insert_frame(con, "policy.icp_scores", result.scores)
