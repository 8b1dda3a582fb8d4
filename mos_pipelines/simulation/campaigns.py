"""Campaigns of the world: email programmes from the scenario, one always-on paid campaign per paid
channel and region, and the webinar series. None of it depends on the number of days."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from mos_pipelines.ingestion.contracts import SOURCES
from mos_pipelines.simulation.channels import CHANNELS, PAID_CHANNELS, SESSION_CHANNEL_MIX
from mos_pipelines.simulation.geography import AD_ACCOUNT_CURRENCY, REGIONS
from mos_pipelines.simulation.scenario import HOLDOUT_VARIANT, Scenario
from mos_pipelines.simulation.timestamps import day_of

PAID_START_DAY = -30  # paid campaigns were already running before day 0
PAID_CLICK_OVERHEAD = 1.15  # clicks per paid session (some clicks never become a session)
REGION_CPC_FACTOR = {"NA": 1.0, "EU": 0.8, "UK": 0.9, "APAC": 0.6, "LATAM": 0.4}
WEBINAR_CAMPAIGN_ID = "webinar_series"
AD_GROUPS_PER_CAMPAIGN = 2
# Column not in the landing contract, written on purpose: ingestion must keep it in `_extra`.
EXTRA_COLUMNS = ("region",)


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    channel: str
    objective: str
    region: str  # the region targeted, or "ALL"
    start_day: int
    variant_ids: tuple[str, ...] = ()  # email: the variants, then the holdout
    variant_names: tuple[str, ...] = ()
    daily_budget_usd: float | None = None
    cost_per_send: float | None = None

    @property
    def platform(self) -> str | None:
        return CHANNELS[self.channel].platform

    @property
    def ad_group_ids(self) -> tuple[str, ...]:
        if self.platform is None:
            return ()
        return tuple(f"{self.campaign_id}_ag{k + 1}" for k in range(AD_GROUPS_PER_CAMPAIGN))

    @property
    def account_id(self) -> str | None:
        """The ad account the campaign is billed to (one per platform and region)."""
        if self.platform is None:
            return None
        return f"{self.platform}-{self.region.lower()}-{100 + REGIONS.index(self.region)}"

    @property
    def currency(self) -> str:
        return AD_ACCOUNT_CURRENCY[self.region] if self.region in AD_ACCOUNT_CURRENCY else "USD"


def paid_campaign_id(channel: str, region: str) -> str:
    return f"{channel}_{region.lower()}"


def build_campaigns(scenario: Scenario, people_per_region: dict[str, int]) -> list[Campaign]:
    """Email campaigns (scenario order), then paid campaigns (channel × region), then the webinar series."""
    campaigns = [
        Campaign(
            campaign_id=spec.campaign_id,
            name=spec.name,
            channel="email",
            objective=spec.objective,
            region="ALL",
            start_day=spec.first_day,
            variant_ids=tuple(v.variant_id for v in spec.variants) + ((HOLDOUT_VARIANT,) if spec.holdout_share else ()),
            variant_names=tuple(v.name for v in spec.variants) + (("Holdout (no send)",) if spec.holdout_share else ()),
            cost_per_send=spec.cost_per_send,
        )
        for spec in scenario.email_campaigns
    ]
    behaviour = scenario.behaviour
    weekly_traffic = (5 + 2 * behaviour.weekend_factor) / 7
    for channel in PAID_CHANNELS:
        for region in REGIONS:
            expected_clicks = (
                people_per_region.get(region, 0)
                * behaviour.sessions_per_person_day
                * weekly_traffic
                * SESSION_CHANNEL_MIX[channel]
                * PAID_CLICK_OVERHEAD
            )
            budget = expected_clicks * CHANNELS[channel].cpc_usd * REGION_CPC_FACTOR[region]
            campaigns.append(
                Campaign(
                    campaign_id=paid_campaign_id(channel, region),
                    name=f"{channel.replace('_', ' ').title()} | {region} | Always-on",
                    channel=channel,
                    objective="acquisition",
                    region=region,
                    start_day=PAID_START_DAY,
                    daily_budget_usd=float(max(10, round(budget * 1.1, -1))),
                )
            )
    campaigns.append(Campaign(WEBINAR_CAMPAIGN_ID, "Product webinar series", "webinar", "engagement", "ALL", 0))
    return campaigns


def campaign_header() -> tuple[str, ...]:
    return tuple(f.name for f in SOURCES["campaigns"].fields) + EXTRA_COLUMNS


def campaign_rows(campaigns: list[Campaign], start: datetime.date) -> list[list[str]]:
    """campaigns.csv: one row per campaign × variant (one row for campaigns without variants).

    ``budget`` is the daily budget in USD of an always-on paid campaign; ``end_date`` is empty
    because no campaign has a planned end.
    """
    rows = []
    for c in campaigns:
        variants = list(zip(c.variant_ids, c.variant_names)) or [("", "")]
        for variant_id, variant_name in variants:
            rows.append(
                [
                    c.campaign_id,
                    c.name,
                    c.channel,
                    c.objective,
                    variant_id,
                    variant_name,
                    "true" if variant_id == HOLDOUT_VARIANT else "false",
                    day_of(start, c.start_day).isoformat(),
                    "",
                    f"{c.daily_budget_usd:.2f}" if c.daily_budget_usd is not None else "",
                    f"{c.cost_per_send:.4f}" if c.cost_per_send is not None else "",
                    c.region,
                ]
            )
    return rows
