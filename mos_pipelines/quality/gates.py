"""The blocking quality gates as plain functions over a DuckDB connection (no Dagster here).

Each gate aggregates in DuckDB, validates the resulting pandas frame with its GX suite
(``mos_pipelines.quality.suites``) and returns a ``GateResult``: passed, the observed value, the
threshold, a few failing examples and details. ``record_results`` appends results to
``ops.quality_results``. The Dagster checks in ``mos_pipelines/defs/quality/checks.py`` are thin
wrappers around these functions.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from mos_pipelines.configuration.quality import ConsentForActivation, QualitySettings
from mos_pipelines.ingestion.contracts import SOURCES
from mos_pipelines.quality.suites import SuiteOutcome, validate
from mos_pipelines.warehouse import table_exists

MAX_EXAMPLES = 5
# The quarantine reason ingestion writes for an event with neither anonymousId nor userId.
MISSING_IDS_REASON = "missing all of " + ", ".join(SOURCES["events"].one_of)

RESULTS_DDL = """
create table if not exists ops.quality_results (
    run_id varchar not null,
    check_name varchar not null,
    asset varchar not null,
    passed boolean not null,
    observed double,
    threshold varchar not null,
    details json,
    evaluated_at timestamp not null
)"""


# The asset each table-level gate guards ("schema/table"); the Dagster checks attach to these keys.
GATE_ASSETS: dict[str, str] = {
    "missing_identifiers": "raw/events",
    "event_volume": "marts/fct_events",
    "duplicate_customers": "marts/dim_customers",
    "ad_spend": "marts/fct_ad_spend_daily",
}
DBT_SCHEMAS = ("staging", "intermediate", "marts")


@dataclass(frozen=True)
class ConsentTarget:
    """A table of customers selected for activation and the consent purpose each of them needs."""

    table: str  # schema.table
    purpose: str


def consent_targets(pairs: tuple[tuple[str, str], ...]) -> tuple[ConsentTarget, ...]:
    """The consent gate's targets from (table, purpose) pairs (``ActivationSettings.consent_targets()``)."""
    return tuple(ConsentTarget(table, purpose) for table, purpose in pairs)


def gated_dbt_models() -> tuple[str, ...]:
    """Names of the dbt models a table-level gate guards: the transform split builds everything
    downstream of them in a later step, so their blocking checks can stop it."""
    return tuple(a.split("/")[1] for a in GATE_ASSETS.values() if a.split("/")[0] in DBT_SCHEMAS)


class GateInputMissing(RuntimeError):
    """A table a gate reads does not exist (its asset was never built)."""


@dataclass
class GateResult:
    check_name: str
    asset: str  # asset key as a path, e.g. raw/events
    passed: bool
    observed: float | None
    threshold: str
    examples: list[dict] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def details_json(self) -> str:
        """Details, examples and note as one JSON document (the ``details`` column)."""
        return json.dumps({**self.details, "examples": self.examples, "note": self.note}, default=str)


def _require(con: duckdb.DuckDBPyConnection, relation: str) -> None:
    if not table_exists(con, *relation.split(".")):
        raise GateInputMissing(f"{relation} does not exist: build its asset first (`mos run`).")


def _suite_details(outcome: SuiteOutcome) -> dict[str, Any]:
    return {
        "expectations": [
            {"expectation": e.expectation, "success": e.success, "observed": e.observed} for e in outcome.expectations
        ]
    }


def _unexpected(outcome: SuiteOutcome) -> list[dict]:
    rows: list[dict] = []
    for e in outcome.expectations:
        rows.extend(r for r in e.unexpected_rows if r not in rows)
    return rows


def _rate(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 6)


# -- missing identifiers ---------------------------------------------------------------------------


def missing_identifiers(con: duckdb.DuckDBPyConnection, max_rate: float, min_rows: int = 1) -> GateResult:
    """Events received without any identifier / events received < max_rate, over all events and on every
    event day with at least ``min_rows`` events received.

    Ingestion quarantines an event with neither ``anonymousId`` nor ``userId``, so "received" is
    what loaded into ``raw.events`` plus what was quarantined for that reason (rows quarantined for
    other reasons, e.g. unparseable JSON, say nothing about identifiers and are not counted). The
    day is the event's own timestamp (late events count on their day). A quarantined event whose
    timestamp does not parse has no day: it counts in the overall rate and is reported, never as a
    day of its own. A day (or a whole landing zone) with fewer than ``min_rows`` events cannot fail on
    its own: one bad line among three is not a 33 % problem.
    """
    for relation in ("raw.events", "raw.quarantine"):
        _require(con, relation)
    frame = con.execute(
        f"""
        with loaded as (
            select strftime(event_timestamp::date, '%Y-%m-%d') as event_date, count(*) as n
            from raw.events group by 1
        ),
        missing as (
            select strftime(try_cast(json_extract_string(raw_record, '$.timestamp') as timestamp)::date,
                            '%Y-%m-%d') as event_date,
                   count(*) as n
            from raw.quarantine
            where source = 'events' and contains(reason, ?) group by 1
        )
        {_MISSING_RATE_SELECT}
        """,
        [MISSING_IDS_REASON],
    ).df()
    threshold = f"< {max_rate:g} overall and on every event day with >= {min_rows} events"
    if frame.empty:
        return GateResult(
            "missing_identifiers",
            "raw/events",
            True,
            None,
            threshold,
            note="no events received yet: nothing to measure",
        )
    received, missing = int(frame["received"].sum()), int(frame["missing"].sum())
    dated = frame[frame["event_date"].notna()]
    undated = int(frame.loc[frame["event_date"].isna(), "missing"].sum())
    judged = dated[dated["received"] >= min_rows]
    small = dated[dated["received"] < min_rows]
    if received >= min_rows:
        overall = pd.DataFrame(
            [{"event_date": "all days", "received": received, "missing": missing, "missing_rate": missing / received}]
        )
        judged = pd.concat([judged, overall], ignore_index=True) if len(judged) else overall
    details: dict[str, Any] = {
        "overall_missing_rate": _rate(missing / received if received else None),
        "events_received": received,
        "events_missing_identifiers": missing,
        "missing_without_timestamp": undated,
        "days": len(dated),
        "days_below_min_rows": small["event_date"].tolist()[: MAX_EXAMPLES * 4],
        "min_rows": min_rows,
    }
    if judged.empty:
        return GateResult(
            "missing_identifiers",
            "raw/events",
            True,
            _rate(missing / received),
            threshold,
            details=details,
            note=f"{received} event(s) received, fewer than min_rows ({min_rows}): reported, not judged",
        )
    outcome = validate("missing_identifiers", judged, {"max_rate": max_rate}, ["event_date"])
    failing = judged[judged["event_date"].isin({r["event_date"] for r in _unexpected(outcome)})]
    examples = failing.sort_values("missing_rate", ascending=False).head(MAX_EXAMPLES).to_dict("records")
    failing_days = [d for d in failing["event_date"] if d != "all days"]
    quarantined = (
        con.execute(
            "select source_file, line, left(raw_record, 160) as raw_record from raw.quarantine "
            "where source = 'events' and contains(reason, ?) "
            "and (? or strftime(try_cast(json_extract_string(raw_record, '$.timestamp') as timestamp)::date, "
            "'%Y-%m-%d') in (select unnest(?))) order by source_file, line limit ?",
            [MISSING_IDS_REASON, not failing_days and len(failing) > 0, failing_days, MAX_EXAMPLES],
        )
        .df()
        .to_dict("records")
    )
    return GateResult(
        "missing_identifiers",
        "raw/events",
        outcome.success,
        observed=_rate(judged["missing_rate"].max()),
        threshold=threshold,
        examples=[{k: (_rate(v) if k == "missing_rate" else v) for k, v in row.items()} for row in examples],
        details={
            "observed_is": "the highest missing_rate overall or of any judged event day",
            **details,
            "days_failing": len(failing_days),
            "quarantined_examples": quarantined,
            **_suite_details(outcome),
        },
    )


_MISSING_RATE_SELECT = """
        select
            coalesce(loaded.event_date, missing.event_date) as event_date,
            coalesce(loaded.n, 0) + coalesce(missing.n, 0) as received,
            coalesce(missing.n, 0) as missing,
            coalesce(missing.n, 0) / (coalesce(loaded.n, 0) + coalesce(missing.n, 0)) as missing_rate
        from loaded full outer join missing on loaded.event_date = missing.event_date
        order by event_date
"""


# -- duplicate customers ---------------------------------------------------------------------------


def duplicate_customers(con: duckdb.DuckDBPyConnection, max_rate: float, min_customers: int = 1) -> GateResult:
    """Share of ``dim_customers`` customers that share an exact identifier (email match key or
    E.164 phone of one of their CRM records) with another customer < max_rate. With fewer than
    ``min_customers`` customers the rate is reported, not judged (one pair among twenty is 10 %).

    Identifiers the identity guards excluded (blocked values, shared by too many people) are not
    counted: sharing them is expected. Same definition as the dbt test
    ``assert_identity_duplicate_customer_rate``.
    """
    for relation in (
        "marts.dim_customers",
        "marts.dim_customer_identity_map",
        "intermediate.int_crm_contacts__normalised",
        "intermediate.int_identity__excluded_identifiers",
    ):
        _require(con, relation)
    frame = con.execute(
        """
        with identifiers as (
            select distinct m.customer_id, 'email' as kind, c.email_match_key as identifier
            from marts.dim_customer_identity_map m
            inner join intermediate.int_crm_contacts__normalised c on m.node_key = c.node_key
            where c.email_match_key is not null
            union
            select distinct m.customer_id, 'phone' as kind, c.phone_e164 as identifier
            from marts.dim_customer_identity_map m
            inner join intermediate.int_crm_contacts__normalised c on m.node_key = c.node_key
            where c.phone_e164 is not null
        ),
        counted as (
            select identifiers.* from identifiers
            left join intermediate.int_identity__excluded_identifiers x
                on x.node_key = identifiers.kind || ':' || identifiers.identifier
            where x.node_key is null
        ),
        twins as (
            select a.customer_id, min(b.customer_id) as twin_customer_id, min(a.kind) as shared_kind
            from counted a
            inner join counted b on a.kind = b.kind and a.identifier = b.identifier and a.customer_id <> b.customer_id
            group by a.customer_id
        )
        select d.customer_id, (t.customer_id is not null)::integer as has_twin, t.twin_customer_id, t.shared_kind
        from marts.dim_customers d
        left join twins t on d.customer_id = t.customer_id
        order by d.customer_id
        """
    ).df()
    threshold = f"< {max_rate:g} of customers"
    if frame.empty:
        return GateResult(
            "duplicate_customers",
            "marts/dim_customers",
            True,
            None,
            threshold,
            note="no customers yet: nothing to measure",
        )
    twins = frame[frame["has_twin"] == 1]
    if len(frame) < min_customers:
        return GateResult(
            "duplicate_customers",
            "marts/dim_customers",
            True,
            _rate(frame["has_twin"].mean()),
            threshold,
            details={"customers": len(frame), "customers_with_twin": len(twins), "min_customers": min_customers},
            examples=twins.head(MAX_EXAMPLES)[["customer_id", "twin_customer_id", "shared_kind"]].to_dict("records"),
            note=f"{len(frame)} customers, fewer than min_customers ({min_customers}): reported, not judged",
        )
    outcome = validate("duplicate_customers", frame, {"max_rate": max_rate}, ["customer_id"])
    return GateResult(
        "duplicate_customers",
        "marts/dim_customers",
        outcome.success,
        observed=_rate(frame["has_twin"].mean()),
        threshold=threshold,
        examples=twins.head(MAX_EXAMPLES)[["customer_id", "twin_customer_id", "shared_kind"]].to_dict("records"),
        details={
            "customers": len(frame),
            "customers_with_twin": len(twins),
            "min_customers": min_customers,
            **_suite_details(outcome),
        },
    )


# -- event volume ----------------------------------------------------------------------------------


def daily_event_counts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per calendar day of ``occurred_at`` in ``marts.fct_events``: events and the sum over devices
    of (events per device)² (the compound-Poisson variance of the day's count); days without
    events are 0."""
    _require(con, "marts.fct_events")
    counts = con.execute(
        """
        with per_device as (
            select occurred_at::date as event_date, device_key, count(*) as n
            from marts.fct_events group by 1, 2
        )
        select event_date, sum(n)::bigint as events, sum(n * n)::bigint as variance
        from per_device group by 1 order by 1
        """
    ).df()
    return complete_days(counts)


def complete_days(counts: pd.DataFrame) -> pd.DataFrame:
    """``counts`` (event_date, events, variance) with every day between the first and the last."""
    columns = ["event_date", "events", "variance"]
    if counts.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "event_date" else "int64") for c in columns})
    counts = counts.copy()
    counts["event_date"] = pd.to_datetime(counts["event_date"]).dt.date
    spine = pd.date_range(min(counts["event_date"]), max(counts["event_date"]), freq="D").date
    return (
        pd.DataFrame({"event_date": spine})
        .merge(counts[columns], on="event_date", how="left")
        .fillna({"events": 0, "variance": 0})
        .astype({"events": "int64", "variance": "int64"})
    )


def week_over_week(
    counts: pd.DataFrame, noise_z: float, expected: dict[datetime.date, str], min_events: int = 1
) -> pd.DataFrame:
    """Each day with a day 7 days earlier in ``counts``: its events, the baseline, the change and
    its z-score against sampling noise; ``expected`` days (date -> reason) are marked. A change
    counts as beyond noise only when the day or its baseline has at least ``min_events`` events
    (two short days say nothing about volume)."""
    rows = []
    by_day = {d: (e, v) for d, e, v in zip(counts["event_date"], counts["events"], counts["variance"])}
    for day, (events, variance) in by_day.items():
        baseline_day = day - datetime.timedelta(days=7)
        if baseline_day not in by_day:
            continue
        baseline, baseline_variance = by_day[baseline_day]
        change = events / baseline - 1 if baseline else float("nan")
        spread = math.sqrt(variance + baseline_variance)
        z = (events - baseline) / spread if spread else float("nan")
        rows.append(
            {
                "event_date": day,
                "weekday": day.strftime("%a"),
                "events": int(events),
                "baseline_date": baseline_day,
                "baseline_events": int(baseline),
                "change": change,
                "noise_z": z,
                # nan (no events at all) counts as beyond noise, unless both days are too short to judge
                "beyond_noise": bool(not (abs(z) <= noise_z)) and max(events, baseline) >= min_events,
                "expected_reason": expected.get(day),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "event_date",
            "weekday",
            "events",
            "baseline_date",
            "baseline_events",
            "change",
            "noise_z",
            "beyond_noise",
            "expected_reason",
        ],
    )


def event_volume(
    con: duckdb.DuckDBPyConnection,
    max_change: float,
    noise_z: float,
    min_history_days: int,
    expected_days: dict[datetime.date, str] | None = None,
    min_events: int = 1,
) -> GateResult:
    """Every day's event count within ±max_change of the same weekday a week earlier, unless the
    change is within ``noise_z`` standard deviations of sampling noise.

    Days listed as expected (with a reason) are exempt; with fewer than ``min_history_days`` days
    of events there is nothing to compare and the gate passes with a note.
    """
    return judge_volume(daily_event_counts(con), max_change, noise_z, min_history_days, expected_days, min_events)


def judge_volume(
    counts: pd.DataFrame,
    max_change: float,
    noise_z: float,
    min_history_days: int,
    expected_days: dict[datetime.date, str] | None = None,
    min_events: int = 1,
) -> GateResult:
    """The volume gate on daily counts (event_date, events, variance); see ``event_volume``."""
    expected_days = expected_days or {}
    threshold = f"|change| <= {max_change:g} unless |z| <= {noise_z:g}"
    if len(counts) < min_history_days:
        return GateResult(
            "event_volume",
            "marts/fct_events",
            True,
            None,
            threshold,
            details={"days_of_history": len(counts)},
            note=f"not enough history: {len(counts)} day(s) of events, the gate needs {min_history_days}",
        )
    compared = week_over_week(counts, noise_z, expected_days, min_events)
    judged = compared[compared["expected_reason"].isna()].drop(columns="expected_reason")
    exempt = compared[compared["expected_reason"].notna()]
    details: dict[str, Any] = {
        "days_of_history": len(counts),
        "days_judged": len(judged),
        "min_events": min_events,
        "expected_days_exempt": [
            {"event_date": str(d), "reason": r} for d, r in zip(exempt["event_date"], exempt["expected_reason"])
        ],
    }
    if judged.empty:
        return GateResult(
            "event_volume",
            "marts/fct_events",
            True,
            None,
            threshold,
            details=details,
            note="every comparable day is listed as expected",
        )
    frame = judged.assign(event_date=judged["event_date"].astype(str))
    outcome = validate("event_volume", frame, {"min_change": -max_change, "max_change": max_change}, ["event_date"])
    bad_days = {str(r["event_date"]) for r in _unexpected(outcome)}
    failing = frame[frame["event_date"].isin(bad_days)]
    finite = frame["change"].dropna()
    examples = failing.assign(abs_change=failing["change"].abs().fillna(float("inf")))
    examples = examples.sort_values("abs_change", ascending=False).drop(columns="abs_change").head(MAX_EXAMPLES)
    return GateResult(
        "event_volume",
        "marts/fct_events",
        outcome.success,
        observed=_rate(finite.abs().max()) if len(finite) else None,
        threshold=threshold,
        examples=[
            {
                **row,
                "baseline_date": str(row["baseline_date"]),
                "change": _rate(row["change"]),
                "noise_z": _rate(row["noise_z"]),
            }
            for row in examples.to_dict("records")
        ],
        details={
            **details,
            "observed_is": "the largest |change| of any judged day",
            "largest_abs_noise_z": _rate(frame["noise_z"].abs().max()),
            "days_failing": len(failing),
            **_suite_details(outcome),
        },
    )


# -- ad spend ---------------------------------------------------------------------------------------


def ad_spend(con: duckdb.DuckDBPyConnection, min_spend: float) -> GateResult:
    """Every row of ``marts.fct_ad_spend_daily`` has a spend >= min_spend (and not null)."""
    _require(con, "marts.fct_ad_spend_daily")
    frame = con.execute(
        "select ad_spend_daily_id, strftime(date_day, '%Y-%m-%d') as date_day, platform, campaign_id, spend "
        "from marts.fct_ad_spend_daily order by 1"
    ).df()
    threshold = f">= {min_spend:g} on every row"
    if frame.empty:
        return GateResult(
            "ad_spend",
            "marts/fct_ad_spend_daily",
            True,
            None,
            threshold,
            note="no ad spend rows yet: nothing to measure",
        )
    frame["spend"] = frame["spend"].astype(float)
    outcome = validate("ad_spend", frame, {"min_spend": min_spend}, ["ad_spend_daily_id"])
    failing = frame[frame["spend"].isna() | (frame["spend"] < min_spend)]
    return GateResult(
        "ad_spend",
        "marts/fct_ad_spend_daily",
        outcome.success,
        observed=_rate(frame["spend"].min()),
        threshold=threshold,
        examples=failing.head(MAX_EXAMPLES).to_dict("records"),
        details={
            "observed_is": "the lowest spend of any row",
            "rows": len(frame),
            "rows_failing": len(failing),
            **_suite_details(outcome),
        },
    )


# -- consent for activation ------------------------------------------------------------------------


def consent_check_name(target: ConsentTarget) -> str:
    """The check's name for one (table, purpose) target, e.g. consent_email_marketing."""
    return f"consent_{target.purpose}"


def consent_for_activation(
    con: duckdb.DuckDBPyConnection, target: ConsentTarget, settings: ConsentForActivation
) -> GateResult:
    """Every customer in ``target.table`` has a row in the consent table for ``target.purpose``
    (with an allowed status when ``settings.status_column`` is set)."""
    _require(con, target.table)
    _require(con, settings.consent_table)
    cust, purpose = settings.customer_column, settings.purpose_column
    status_filter, params = "", [target.purpose]
    if settings.status_column:
        status_filter = f' and c."{settings.status_column}" in (select unnest(?))'
        params.append(list(settings.allowed_statuses))
    frame = con.execute(
        f"""
        with selected as (select distinct "{cust}" as customer_id from {target.table})
        select selected.customer_id,
               exists (select 1 from {settings.consent_table} c
                       where c."{cust}" = selected.customer_id and c."{purpose}" = ?{status_filter}) as has_consent
        from selected order by 1
        """,
        params,
    ).df()
    statuses = f" ({', '.join(settings.allowed_statuses)})" if settings.status_column else ""
    threshold = f"every customer: {target.purpose} consent row{statuses}"
    asset = target.table.replace(".", "/")
    if frame.empty:
        return GateResult(
            consent_check_name(target), asset, True, 0.0, threshold, note="no customer selected: nothing to check"
        )
    outcome = validate("consent_for_activation", frame, {}, ["customer_id"])
    failing = frame[~frame["has_consent"].astype(bool)]
    return GateResult(
        consent_check_name(target),
        asset,
        outcome.success,
        observed=_rate(len(failing) / len(frame)),
        threshold=threshold,
        examples=failing.head(MAX_EXAMPLES)[["customer_id"]].to_dict("records"),
        details={
            "observed_is": "share of selected customers without consent",
            "customers": len(frame),
            "customers_without_consent": len(failing),
            "purpose": target.purpose,
            **_suite_details(outcome),
        },
    )


# -- results history -------------------------------------------------------------------------------


def record_results(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    results: list[GateResult],
    evaluated_at: datetime.datetime | None = None,
) -> None:
    """Append one row per result to ``ops.quality_results`` (created when missing)."""
    con.execute("create schema if not exists ops")
    con.execute(RESULTS_DDL)
    at = evaluated_at or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    con.executemany(
        "insert into ops.quality_results values (?, ?, ?, ?, ?, ?, ?, ?)",
        [[run_id, r.check_name, r.asset, r.passed, r.observed, r.threshold, r.details_json(), at] for r in results],
    )


def gates_for(config: QualitySettings) -> dict[str, Any]:
    """Keyword arguments of each table-level gate from the thresholds."""
    volume = config.event_volume
    return {
        "missing_identifiers": {
            "max_rate": config.missing_identifiers.max_rate,
            "min_rows": config.missing_identifiers.min_rows,
        },
        "duplicate_customers": {
            "max_rate": config.duplicate_customers.max_rate,
            "min_customers": config.duplicate_customers.min_customers,
        },
        "event_volume": {
            "max_change": volume.max_change,
            "noise_z": volume.noise_z,
            "min_history_days": volume.min_history_days,
            "min_events": volume.min_events,
            "expected_days": {d.date: d.reason for d in volume.expected_days},
        },
        "ad_spend": {"min_spend": config.ad_spend.min_spend},
    }
