"""What the bandit learns from: experiments, per-unit exposures and successes, and unit segments.

Two readers give the same frames:

- ``WAREHOUSE``: the dbt models (``stg_marketing__campaign_variants``, ``stg_esp__email_events``,
  ``fct_conversions``, ``int_marketing__email_regions``), used by the Dagster assets and by the
  closed loop's full-build mode;
- ``RAW``: the ingested raw tables (``raw.campaigns``, ``raw.email``, ``raw.orders``,
  ``raw.consent``), used by the closed loop's fast mode, which ingests each day's landing files but
  does not run dbt (see docs/DECISIONS.md, Experiments).

A unit is a recipient address, trimmed and lower-cased. Holdout units (by their hash) are dropped in
the query, so nothing they do reaches the bandit. Only data before the allocation date is read.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from mos_pipelines.configuration.experiments import ExperimentsSettings
from mos_pipelines.experiments.assignment import HOLDOUT, bucket_sql
from mos_pipelines.settings import DBT_PROJECT_DIR
from mos_pipelines.warehouse import table_exists

Source = Literal["warehouse", "raw"]
WAREHOUSE: Source = "warehouse"
RAW: Source = "raw"
UNKNOWN_SEGMENT = "unknown"
ALL_SEGMENT = "all"
DEFAULT_HOLDOUT_VARIANT = "holdout"
FX_SEED = DBT_PROJECT_DIR / "seeds" / "fx_rates.csv"
UNIT_COLUMNS = ["experiment_id", "unit_id", "variant_id", "exposures", "successes", "value_usd", "first_exposed_at"]


@dataclass(frozen=True)
class Experiment:
    """An email campaign with variants, as the experiments system sees it."""

    experiment_id: str
    objective: str | None
    variants: tuple[str, ...]  # non-holdout variants, sorted: the arm order everywhere
    holdout_variant: str
    goal: str
    holdout_share: float


def email_match_key_sql(expr: str) -> str:
    """The identity key of an address, as dbt's ``email_match_key(normalise_email(expr))`` macro:
    +tag dropped, googlemail.com → gmail.com, dots dropped in gmail local parts; null if not an address."""
    e = f"nullif(lower(trim({expr})), '')"
    local = f"split_part(split_part({e}, '@', 1), '+', 1)"
    raw_domain = f"split_part({e}, '@', 2)"
    domain = f"(case when {raw_domain} = 'googlemail.com' then 'gmail.com' else {raw_domain} end)"
    return (
        f"(case when {e} like '%_@_%._%' and {e} not like '%@%@%' and {e} not like '% %' and {local} != '' "
        f"then (case when {domain} = 'gmail.com' then replace({local}, '.', '') else {local} end) || '@' || {domain} end)"
    )


def load_experiments(con, source: Source, config: ExperimentsSettings) -> list[Experiment]:
    """Email campaigns with at least one non-holdout variant (from campaigns.csv), sorted by id."""
    if source == RAW:
        if not table_exists(con, "raw", "campaigns"):
            return []
        frame = con.execute(
            """select campaign_id, objective, variant_id, coalesce(is_holdout, false) as is_holdout
            from raw.campaigns where lower(channel) = 'email' and variant_id is not null and variant_id != ''
            qualify row_number() over (partition by campaign_id, variant_id order by _loaded_at desc, _line desc) = 1"""
        ).df()
    else:
        frame = con.execute(
            """select campaign_id, objective, variant_id, coalesce(is_holdout, false) as is_holdout
            from staging.stg_marketing__campaign_variants
            where lower(channel) = 'email' and variant_id is not null"""
        ).df()
    experiments = []
    for campaign_id, rows in frame.groupby("campaign_id", sort=True):
        variants = tuple(sorted(rows.loc[~rows["is_holdout"], "variant_id"].astype(str)))
        if not variants:
            continue
        holdouts = sorted(rows.loc[rows["is_holdout"], "variant_id"].astype(str))
        objective = rows["objective"].dropna()
        objective = str(objective.iloc[0]) if len(objective) else None
        experiments.append(
            Experiment(
                experiment_id=str(campaign_id),
                objective=objective,
                variants=variants,
                holdout_variant=holdouts[0] if holdouts else DEFAULT_HOLDOUT_VARIANT,
                goal=config.goal_for(str(campaign_id), objective),
                holdout_share=config.holdout_share_for(str(campaign_id)),
            )
        )
    return experiments


def _experiments_frame(experiments: list[Experiment]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "experiment_id": [e.experiment_id for e in experiments],
            "holdout_share": [e.holdout_share for e in experiments],
            "holdout_variant": [e.holdout_variant for e in experiments],
        }
    )


def unit_outcomes(
    con, source: Source, experiments: list[Experiment], config: ExperimentsSettings, before: datetime.date
) -> pd.DataFrame:
    """Per experiment × unit × variant: exposures, successes and value for the experiment's goal,
    holdout units excluded. Click goal: messages sent / clicked. Conversion and revenue goals: one
    exposure per unit and variant; a success is a KPI conversion (an order) within the conversion
    window after the unit's first send of the variant; value is its revenue in USD."""
    if not experiments:
        return pd.DataFrame(columns=UNIT_COLUMNS)
    salt = config.assignment.salt
    window = config.bandit.conversion_window_days
    needs_conversions = any(e.goal != "click" for e in experiments)
    con.register("_experiments", _experiments_frame(experiments))
    try:
        if source == RAW:
            if not table_exists(con, "raw", "email"):
                return pd.DataFrame(columns=UNIT_COLUMNS)
            email = """select campaign_id, variant_id, recipient_email, event as email_event_type, message_id,
                occurred_at from raw.email"""
            conversions = _raw_conversions(con) if needs_conversions else _NO_CONVERSIONS
        else:
            email = """select campaign_id, variant_id, recipient_email, email_event_type, message_id, occurred_at
                from staging.stg_esp__email_events"""
            # an order reaches the addresses of its customer and of the customer its event was stitched to; two
            # equi-joins (a join on `in (a, b)` is a nested loop: 17 s against 0.04 at 100k people) whose union counts
            # an (order, address) pair once, as one join on either id would
            reached = "\n                    union\n".join(
                f"""
                    select conversions.conversion_id, regions.email_match_key, conversions.converted_at,
                        conversions.revenue_usd
                    from marts.fct_conversions as conversions
                    inner join intermediate.int_marketing__email_regions as regions
                        on conversions.{id_column} = regions.customer_id
                    where conversions.conversion_type = 'order'"""
                for id_column in ("customer_id", "event_customer_id")
            )
            conversions = (
                f"select email_match_key, converted_at, revenue_usd from ({reached}) as reached"
                if needs_conversions
                else _NO_CONVERSIONS
            )
        holdout = bucket_sql("per_unit.unit_id", "per_unit.experiment_id", HOLDOUT, salt)
        frame = con.execute(
            f"""
            with email as ({email}),
            per_unit as (
                select
                    email.campaign_id as experiment_id,
                    lower(trim(email.recipient_email)) as unit_id,
                    email.variant_id,
                    min(case when email.email_event_type = 'sent' then email.occurred_at end) as first_sent_at,
                    count(distinct case when email.email_event_type = 'sent' then email.message_id end) as sends,
                    count(distinct case when email.email_event_type = 'clicked' then email.message_id end) as clicks
                from email
                inner join _experiments on email.campaign_id = _experiments.experiment_id
                where email.occurred_at < ? and email.variant_id is not null
                    and email.variant_id != _experiments.holdout_variant
                    and nullif(trim(email.recipient_email), '') is not null
                group by all
            ),
            treated as (
                select per_unit.* from per_unit
                inner join _experiments on per_unit.experiment_id = _experiments.experiment_id
                where per_unit.first_sent_at is not null and not ({holdout} < _experiments.holdout_share)
            ),
            conversions as ({conversions}),
            converted as (
                select treated.experiment_id, treated.unit_id, treated.variant_id,
                    count(*) as conversions, sum(coalesce(conversions.revenue_usd, 0)) as revenue_usd
                from treated
                inner join conversions
                    on conversions.email_match_key = {email_match_key_sql("treated.unit_id")}
                    and conversions.converted_at >= treated.first_sent_at
                    and conversions.converted_at <= treated.first_sent_at + interval {int(window)} day
                    and conversions.converted_at < ?
                group by all
            )
            select treated.experiment_id, treated.unit_id, treated.variant_id, treated.sends, treated.clicks,
                coalesce(converted.conversions, 0) as conversions, coalesce(converted.revenue_usd, 0) as revenue_usd,
                treated.first_sent_at as first_exposed_at
            from treated
            left join converted using (experiment_id, unit_id, variant_id)
            order by 1, 2, 3
        """,
            [before, before],
        ).df()
    finally:
        con.unregister("_experiments")
    goal = frame["experiment_id"].map({e.experiment_id: e.goal for e in experiments})
    click = goal == "click"
    return pd.DataFrame(
        {
            "experiment_id": frame["experiment_id"],
            "unit_id": frame["unit_id"],
            "variant_id": frame["variant_id"],
            "exposures": frame["sends"].where(click, 1).astype("int64"),
            "successes": frame["clicks"].where(click, (frame["conversions"] > 0).astype("int64")).astype("int64"),
            "value_usd": frame["revenue_usd"].where(goal == "revenue", 0.0).astype(float),
            "first_exposed_at": frame["first_exposed_at"],
        }
    )


_NO_CONVERSIONS = (
    "select cast(null as varchar) as email_match_key, cast(null as timestamp) as converted_at, "
    "cast(null as double) as revenue_usd where false"
)


def _raw_conversions(con) -> str:
    """Completed orders by buyer address (raw.orders), revenue in USD through the fx_rates seed."""
    if not table_exists(con, "raw", "orders"):
        return _NO_CONVERSIONS
    fx = Path(FX_SEED).as_posix().replace("'", "''")
    return f"""select {email_match_key_sql("orders.email")} as email_match_key, orders.created_at as converted_at,
            orders.amount * coalesce(fx.usd_per_unit, 1.0) as revenue_usd
        from raw.orders as orders
        left join read_csv('{fx}', header = true) as fx on upper(orders.currency) = upper(fx.currency)
        where lower(orders.status) = 'completed' and nullif(trim(orders.email), '') is not null
        qualify row_number() over (partition by orders.order_id order by orders._loaded_at, orders._line) = 1"""


def unit_segments(con, source: Source, unit_ids: pd.Series, segment: str) -> pd.Series:
    """Segment of each unit (indexed by unit id): its region, ``unknown`` when the data do not tell,
    or ``all`` when the bandit is not segmented. Warehouse: the region of the address's identity key in
    ``int_marketing__email_regions``. Raw: the latest consent region recorded for the same address."""
    units = pd.Series(pd.unique(unit_ids.astype(str)), dtype=object)
    if segment == "none":
        return pd.Series(ALL_SEGMENT, index=units, dtype=object)
    if source == RAW:
        if not table_exists(con, "raw", "consent"):
            return pd.Series(UNKNOWN_SEGMENT, index=units, dtype=object)
        # units are normalised addresses already: join the consent subject the same way (no match key on
        # either side, which costs a second per million rows); the latest consent row wins
        regions = """select lower(trim(subject)) as unit_id, arg_max(upper(trim(region)), (occurred_at, _loaded_at, _line))
                as region
            from raw.consent where nullif(trim(region), '') is not null and nullif(trim(subject), '') is not null
            group by 1"""
        join = "left join regions using (unit_id)"
    else:
        regions = """select email_match_key, region from intermediate.int_marketing__email_regions
            where region is not null"""
        join = f"left join regions on regions.email_match_key = {email_match_key_sql('_units.unit_id')}"
    con.register("_units", pd.DataFrame({"unit_id": units}))
    try:
        found = con.execute(f"""
            with regions as ({regions})
            select _units.unit_id, coalesce(regions.region, '{UNKNOWN_SEGMENT}') as segment
            from _units {join}
        """).df()
    finally:
        con.unregister("_units")
    return pd.Series(found["segment"].to_numpy(), index=found["unit_id"].to_numpy(), dtype=object)


def data_through(con, source: Source) -> datetime.date | None:
    """The last day with email events (the allocation is for the day after)."""
    if source == RAW:
        if not table_exists(con, "raw", "email"):
            return None
        sql = "select max(occurred_at) from raw.email"
    else:
        sql = "select max(occurred_at) from staging.stg_esp__email_events"
    value = con.execute(sql).fetchall()[0][0]
    return None if value is None else pd.Timestamp(value).date()
