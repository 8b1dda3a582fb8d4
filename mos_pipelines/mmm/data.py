"""Weekly spend (week × region × channel) and outcome (week × region) for the MMM, from the marts or any frames.

Only complete weeks (7 days with data) are kept; a channel that spent in too few weeks, and a region without an
outcome, are left out with the reason; too few weeks or channels left raise ``NotEnoughData`` (the asset records
the reason and skips the fit, never failing the run)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mos_pipelines.warehouse import table_exists


class NotEnoughData(ValueError):
    """The data cannot support a fit; the message says what is missing and what is needed."""


@dataclass
class WeeklyData:
    weeks: list[datetime.date]
    regions: list[str]
    channels: list[str]
    spend: np.ndarray  # (weeks, regions, channels), USD
    outcome: np.ndarray  # (weeks, regions)
    outcome_name: str = "revenue_usd"
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (part, reason)

    @property
    def shape(self) -> str:
        return f"{len(self.weeks)} weeks × {len(self.channels)} channels × {len(self.regions)} regions"

    def region_mix(self) -> np.ndarray:
        """Each channel's spend share by region, (channels, regions) (even when a channel never spent)."""
        total = self.spend.sum(axis=0).T  # (C, R)
        sums = total.sum(axis=1, keepdims=True)
        even = np.full_like(total, 1 / total.shape[1])
        return np.where(sums > 0, total / np.where(sums > 0, sums, 1), even)


def weekly(
    spend: pd.DataFrame,
    outcome: pd.DataFrame,
    days: pd.DataFrame | None = None,
    *,
    min_weeks: int = 26,
    min_channels: int = 2,
    min_active_weeks: int = 4,
    outcome_name: str = "revenue_usd",
) -> WeeklyData:
    """Arrays from long frames: ``spend`` (week_start, region, channel, spend_usd), ``outcome`` (week_start,
    region, value); ``days`` (week_start, days): days inside the data's span per week — the weeks with 7 are the
    weeks modelled (missing outcome rows in them are zeros); without it, the weeks with an outcome row."""
    for name, frame, cols in (
        ("spend", spend, ["week_start", "region", "channel", "spend_usd"]),
        ("outcome", outcome, ["week_start", "region", "value"]),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"MMM {name} frame: missing column(s) {', '.join(missing)} (expected {', '.join(cols)})")
    left_out: list[tuple[str, str]] = []
    spend = spend.assign(region=spend["region"].fillna("unknown"), channel=spend["channel"].fillna("unknown"))
    outcome = outcome.assign(region=outcome["region"].fillna("unknown"))
    bad = spend["spend_usd"].isna() | (spend["spend_usd"] < 0)
    if bad.any():
        left_out.append(("spend rows", f"{int(bad.sum())} rows with a missing or negative spend_usd ignored"))
        spend = spend[~bad]
    weeks = sorted(set(pd.to_datetime(outcome["week_start"]).dt.date))
    if days is not None and not days.empty:
        full = {pd.Timestamp(w).date() for w, d in zip(days["week_start"], days["days"]) if d >= 7}
        partial = [w for w in weeks if w not in full]
        if partial:
            left_out.append(("weeks", f"{len(partial)} incomplete week(s) left out ({', '.join(map(str, partial))})"))
        weeks = sorted(full)  # a complete week without any outcome row is a week of zeros
    if len(weeks) < min_weeks:
        raise NotEnoughData(
            f"{len(weeks)} complete week(s) of outcome data; the MMM needs at least {min_weeks} "
            "(seasonality and carry-over cannot be told apart from spend on fewer)"
        )
    # gaps: weeks between the first and the last without any outcome row count as missing data, not zeros
    span = (weeks[-1] - weeks[0]).days // 7 + 1
    if span != len(weeks):
        left_out.append(("weeks", f"{span - len(weeks)} week(s) without outcome data inside the range left out"))
    spend = spend.assign(week_start=pd.to_datetime(spend["week_start"]).dt.date)
    outcome = outcome.assign(week_start=pd.to_datetime(outcome["week_start"]).dt.date)
    spend = spend[spend["week_start"].isin(weeks)]
    outcome = outcome[outcome["week_start"].isin(weeks)]

    regions = sorted(outcome.groupby("region")["value"].sum().loc[lambda s: s.abs() > 0].index)
    for r in sorted(set(spend["region"]) - set(regions)):
        left_out.append((f"region {r}", "spend without any outcome in the region: left out"))
    channels = []
    active = spend[spend["spend_usd"] > 0].groupby("channel")["week_start"].nunique()
    for c in sorted(set(spend["channel"])):
        n = int(active.get(c, 0))
        if n < min_active_weeks:
            left_out.append((c, f"spend in {n} of {len(weeks)} weeks; at least {min_active_weeks} needed"))
        else:
            channels.append(c)
    if len(channels) < min_channels:
        raise NotEnoughData(
            f"{len(channels)} channel(s) with spend in at least {min_active_weeks} weeks "
            f"({', '.join(channels) or 'none'}); the MMM needs at least {min_channels}"
        )
    if not regions:
        raise NotEnoughData("no region with a non-zero outcome")

    widx = {w: i for i, w in enumerate(weeks)}
    ridx = {r: i for i, r in enumerate(regions)}
    cidx = {c: i for i, c in enumerate(channels)}
    cube = np.zeros((len(weeks), len(regions), len(channels)))
    s = spend[spend["region"].isin(ridx) & spend["channel"].isin(cidx)]
    np.add.at(
        cube,
        (s["week_start"].map(widx).to_numpy(), s["region"].map(ridx).to_numpy(), s["channel"].map(cidx).to_numpy()),
        s["spend_usd"].to_numpy(dtype=float),
    )
    y = np.zeros((len(weeks), len(regions)))
    o = outcome[outcome["region"].isin(ridx)]
    np.add.at(y, (o["week_start"].map(widx).to_numpy(), o["region"].map(ridx).to_numpy()), o["value"].to_numpy(float))
    return WeeklyData(weeks, regions, channels, cube, y, outcome_name, left_out)


SPEND_SQL = """
select cast(date_trunc('week', date_day) as date) as week_start, coalesce(region, 'unknown') as region, channel,
    sum(cost_usd) as spend_usd
from marts.fct_channel_performance
where cost_usd > 0
group by all
"""
OUTCOME_SQL = """
select cast(date_trunc('week', converted_at) as date) as week_start, coalesce(region, 'unknown') as region,
    sum({measure}) as value
from marts.fct_conversions
where conversion_type = ?
group by all
"""
# days of each week inside the data's span (first to last day with any conversion): a week cut by the span's ends
# is incomplete; a day without an order inside it is a zero, not missing data
DAYS_SQL = """
with span as (select min(cast(converted_at as date)) as lo, max(cast(converted_at as date)) as hi
    from marts.fct_conversions),
days as (select cast(unnest(generate_series(lo, hi, interval 1 day)) as date) as d from span where lo is not null)
select cast(date_trunc('week', d) as date) as week_start, count(*) as days from days group by all
"""


def order_conversion_type(con) -> str:
    """The conversion type of every completed order: the ``conversion_types`` seed's row detected by
    ``completed_order`` (``order`` when the seed is not in the warehouse)."""
    if table_exists(con, "staging", "conversion_types"):
        rows = con.execute(
            "select conversion_type from staging.conversion_types where detected_by = 'completed_order' order by 1"
        ).fetchall()
        if rows:
            return str(rows[0][0])
    return "order"


def from_marts(con, *, conversion_type: str | None = None, measure: str = "revenue", **limits) -> WeeklyData:
    """Spend from ``fct_channel_performance`` (cost: ad spend + send cost), outcome from ``fct_conversions``
    (``revenue``: sum of revenue_usd; ``conversions``: count) of one conversion type (default: every completed
    order), by ISO week and region."""
    for table in ("fct_channel_performance", "fct_conversions"):
        if not table_exists(con, "marts", table):
            raise NotEnoughData(f"marts.{table} does not exist yet (run the dbt build first)")
    if measure not in ("revenue", "conversions"):
        raise ValueError(f"MMM measure {measure!r}: expected revenue or conversions")
    expr = "coalesce(revenue_usd, 0)" if measure == "revenue" else "1"
    conversion_type = conversion_type or order_conversion_type(con)
    spend = con.execute(SPEND_SQL).df()
    outcome = con.execute(OUTCOME_SQL.format(measure=expr), [conversion_type]).df()
    days = con.execute(DAYS_SQL).df()
    if outcome.empty:
        raise NotEnoughData(f"no `{conversion_type}` conversions in marts.fct_conversions")
    name = "revenue_usd" if measure == "revenue" else "conversions"
    return weekly(spend, outcome, days, outcome_name=name, **limits)
