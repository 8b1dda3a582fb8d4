"""Daily ad platform reports: impressions, clicks, spend and platform-attributed conversions per
campaign × ad group, consistent with the paid sessions of the day (clicks >= sessions)."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd

from mos_pipelines.ingestion.contracts import SOURCES
from mos_pipelines.simulation.campaigns import REGION_CPC_FACTOR, Campaign
from mos_pipelines.simulation.channels import CHANNELS
from mos_pipelines.simulation.geography import FX_USD_PER_UNIT
from mos_pipelines.simulation.sessions import DaySessions
from mos_pipelines.simulation.streams import Stream, rng
from mos_pipelines.simulation.timestamps import day_of

EXTRA_CLICKS_PER_SESSION = 0.15  # clicks that never became a tracked session
CPC_SPREAD = 0.15  # log-normal spread of the daily cost per click
PLATFORM_CONVERSION_BIAS = (0.9, 1.4)  # platforms claim between 0.9x and 1.4x the true orders


def ad_spend_day(
    sessions: DaySessions, orders: pd.DataFrame, campaigns: list[Campaign], seed: int, start: datetime.date
) -> pd.DataFrame:
    """One row per paid campaign × ad group for the day, with the truth behind it."""
    g = rng(seed, Stream.AD_SPEND, sessions.day)
    paid = [(k, c) for k, c in enumerate(campaigns) if c.platform]
    n_groups = len(paid) * 2
    campaign_pos = np.repeat([k for k, _ in paid], 2)
    ad_group = np.tile([0, 1], len(paid))
    key = campaign_pos * 2 + ad_group
    session_key = np.where(sessions.campaign >= 0, sessions.campaign * 2 + np.maximum(sessions.ad_group, 0), -1)
    is_paid = sessions.ad_group >= 0
    n_sessions = np.bincount(session_key[is_paid], minlength=len(campaigns) * 2)[key]
    converted = orders["session_row"].to_numpy()
    order_key = session_key[converted]
    paid_orders = sessions.ad_group[converted] >= 0
    n_orders = np.bincount(order_key[paid_orders], minlength=len(campaigns) * 2)[key]
    revenue_usd = np.bincount(
        order_key[paid_orders], weights=orders["amount_usd"].to_numpy()[paid_orders], minlength=len(campaigns) * 2
    )[key]

    channel = [campaigns[k].channel for k in campaign_pos]
    region = [campaigns[k].region for k in campaign_pos]
    ctr = np.array([CHANNELS[c].ctr for c in channel])
    cpc = np.array([CHANNELS[c].cpc_usd * REGION_CPC_FACTOR[r] for c, r in zip(channel, region)])
    clicks = n_sessions + g.poisson(EXTRA_CLICKS_PER_SESSION * n_sessions + 0.5)
    impressions = np.round(clicks / (ctr * np.exp(0.2 * g.standard_normal(n_groups)))).astype(np.int64)
    impressions = np.maximum(impressions, clicks) + g.poisson(20, n_groups)
    spend_usd = clicks * cpc * np.exp(CPC_SPREAD * g.standard_normal(n_groups) - CPC_SPREAD**2 / 2)
    bias = g.uniform(*PLATFORM_CONVERSION_BIAS, n_groups)
    currency = [campaigns[k].currency for k in campaign_pos]
    fx = np.array([FX_USD_PER_UNIT[c] for c in currency])
    return pd.DataFrame(
        {
            "date": day_of(start, sessions.day).isoformat(),
            "platform": [campaigns[k].platform for k in campaign_pos],
            "account_id": [campaigns[k].account_id for k in campaign_pos],
            "campaign_id": [campaigns[k].campaign_id for k in campaign_pos],
            "campaign_name": [campaigns[k].name for k in campaign_pos],
            "ad_group_id": [campaigns[k].ad_group_ids[a] for k, a in zip(campaign_pos, ad_group)],
            "impressions": impressions,
            "clicks": clicks,
            "spend": np.round(spend_usd / fx, 2),
            "currency": currency,
            "conversions": np.round(n_orders * bias, 2),
            "conversions_value": np.round(revenue_usd * bias / fx, 2),
            # truth only
            "channel": channel,
            "region": region,
            "sessions": n_sessions,
            "orders": n_orders,
            "revenue_usd": np.round(revenue_usd, 2),
            "spend_usd": np.round(spend_usd, 2),
        }
    )


def ad_spend_header() -> tuple[str, ...]:
    return tuple(f.name for f in SOURCES["ad_spend"].fields)


def ad_spend_rows(day_spend: pd.DataFrame, platform: str) -> list[list[str]]:
    rows = day_spend[day_spend["platform"] == platform]
    return [
        [d, p, a, c, n, g, str(i), str(k), f"{s:.2f}", cur, f"{conv:.2f}", f"{val:.2f}"]
        for d, p, a, c, n, g, i, k, s, cur, conv, val in zip(
            rows["date"],
            rows["platform"],
            rows["account_id"],
            rows["campaign_id"],
            rows["campaign_name"],
            rows["ad_group_id"],
            rows["impressions"],
            rows["clicks"],
            rows["spend"],
            rows["currency"],
            rows["conversions"],
            rows["conversions_value"],
        )
    ]
