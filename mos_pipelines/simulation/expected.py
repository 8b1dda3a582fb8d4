"""The expected value of each marketing metric per day × channel × region under the world's generating process
(``truth/expected_daily.csv``): what the insights should find when they say a metric changed or differs.

Computed from the same rates the daily simulation draws from, per person:

- ordinary visits: Poisson with rate ``sessions_per_person_day × engagement × (0.5 + 0.5 × propensity factor)``
  × the weekend factor × the volume schedule (at least one visit on a person's sign-up day), split over the
  channels by ``SESSION_CHANNEL_MIX``;
- webinar sign-up visits: each webinar-tool record created on or after day 0 is created on day d with
  probability ``h (1 − h)^d`` (the CRM creation hazard h);
- email visits: the day's sends as made (who was sent what is the programme's decision, not noise) × (1 − bounce
  rate) × the arm's click rate in the recipient's region;
- completed orders: visits × the session's order probability (channel × region rate × the person's propensity
  factor × the email variant's multiplier, capped) × the completed share of order statuses; revenue: × the
  person's expected order value (plan mix and seats of the company size band); new customers: completed orders
  of people without an earlier one (× P(no completed order before the day), orders on one day treated as
  Poisson);
- cost: ad spend of the paid campaign of the channel × region (clicks = 1.15 × paid visits + 0.5 per ad group,
  × cost per click × the region's factor; the daily log-normal spread has mean 1) + the send cost of the
  day's sends.

Not modelled (small against the noise the insights test): the cap of visits per person and day, two sign-up
records of one person on one day, and how the warehouse credits conversions (last touch, identity).
"""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd

from mos_pipelines.simulation.ad_spend import EXTRA_CLICKS_PER_SESSION
from mos_pipelines.simulation.campaigns import AD_GROUPS_PER_CAMPAIGN, REGION_CPC_FACTOR
from mos_pipelines.simulation.channels import CHANNEL_NAMES, CHANNELS, SESSION_CHANNEL_MIX
from mos_pipelines.simulation.commerce import MAX_SEATS_BY_SIZE, PRODUCT_WEIGHTS_BY_SIZE, PRODUCTS, STATUS_WEIGHTS
from mos_pipelines.simulation.crm import CREATION_DAILY_HAZARD, CrmRecords
from mos_pipelines.simulation.geography import REGIONS
from mos_pipelines.simulation.population import SIZE_BANDS, Population
from mos_pipelines.simulation.response import MAX_CONVERSION_PROBABILITY, ResponseModel
from mos_pipelines.simulation.scenario import Scenario
from mos_pipelines.simulation.timestamps import day_of

METRICS = ("sessions", "orders", "conversions", "revenue_usd", "new_customers", "cost_usd")
COMPLETED_SHARE = STATUS_WEIGHTS[0] / sum(STATUS_WEIGHTS)
EXTRA_CLICKS_PER_AD_GROUP = 0.5  # the Poisson's constant term in ad_spend_day


def expected_order_value(people: pd.DataFrame) -> np.ndarray:
    """Expected USD amount of an order of each person: plan mix × mean seats of the company size band."""
    size = people["size_band"].map({b: i for i, b in enumerate(SIZE_BANDS)}).to_numpy(dtype=np.int64)
    weights = PRODUCT_WEIGHTS_BY_SIZE / PRODUCT_WEIGHTS_BY_SIZE.sum(axis=1, keepdims=True)
    price = weights @ np.array([p.price_usd for p in PRODUCTS])
    seats = (np.asarray(MAX_SEATS_BY_SIZE, dtype=float) + 1) / 2  # 1 + floor(U × max): mean (max + 1) / 2
    return (price * seats)[size]


class ExpectedMetrics:
    """Accumulates the expected metrics day by day (days in order: new customers depend on earlier days)."""

    def __init__(
        self, population: Population, scenario: Scenario, response: ResponseModel, crm: CrmRecords, start: datetime.date
    ) -> None:
        self.scenario, self.response, self.start = scenario, response, start
        self.region = population.region_idx
        self.factor = population.propensity_factor
        self.engagement = population.engagement
        self.signup_day = population.signup_day
        self.order_value = expected_order_value(population.people)
        n = population.size
        frame = crm.frame
        webinar = frame[(frame["system"].to_numpy() == "webinar") & (frame["created_day"].to_numpy() >= 0)]
        self.webinar_records = np.bincount(webinar["person_idx"].to_numpy(dtype=np.int64), minlength=n).astype(float)
        mix = np.zeros(len(CHANNEL_NAMES))
        for channel, share in SESSION_CHANNEL_MIX.items():
            mix[CHANNEL_NAMES.index(channel)] = share
        self.mix = mix / mix.sum()
        # order probability of a visit of each person through each channel (no email multiplier): [person, channel]
        self.order_p = np.clip(
            response.conversion[:, self.region].T * self.factor[:, None], 0, MAX_CONVERSION_PROBABILITY
        )
        self.no_order_yet = np.zeros(n)  # cumulative expected completed orders before the day (Poisson hazard)
        self.frames: list[pd.DataFrame] = []

    def add_day(self, day: int, sends: pd.DataFrame) -> None:
        """The expected metrics of ``day`` given its email sends (rows with person_idx, region, variant, sent)."""
        behaviour = self.scenario.behaviour
        weekend = day_of(self.start, day).weekday() >= 5
        rate = (
            behaviour.sessions_per_person_day
            * self.engagement
            * (0.5 + 0.5 * self.factor)
            * (behaviour.weekend_factor if weekend else 1.0)
            * self.scenario.volume_factor(day)
        )
        signing_up = self.signup_day == day
        rate = np.where(signing_up, rate + np.exp(-rate), rate)  # E[max(N, 1)] for N ~ Poisson(rate)
        visits = rate[:, None] * self.mix[None, :]  # [person, channel]
        webinar = CHANNEL_NAMES.index("webinar")
        visits[:, webinar] += self.webinar_records * CREATION_DAILY_HAZARD * (1 - CREATION_DAILY_HAZARD) ** day
        orders = visits * self.order_p

        email = CHANNEL_NAMES.index("email")
        sent = sends[sends["sent"].to_numpy(dtype=bool)] if len(sends) else sends
        email_person = sent["person_idx"].to_numpy(dtype=np.int64) if len(sent) else np.zeros(0, dtype=np.int64)
        click_p = np.zeros(len(sent))
        multiplier = np.ones(len(sent))
        for (campaign, variant), part in sent.groupby(["campaign_id", "variant_id"]) if len(sent) else []:
            arm = self.response.arms.get((campaign, variant))
            if arm is None:
                continue
            rows = sent.index.get_indexer(part.index)
            r = self.region[email_person[rows]]
            click_p[rows] = arm.click[r] * (1 - self.scenario.email.bounce_rate)
            multiplier[rows] = arm.conversion_multiplier[r]
        email_p = np.clip(
            self.response.conversion[email, self.region[email_person]] * self.factor[email_person] * multiplier,
            0,
            MAX_CONVERSION_PROBABILITY,
        )
        n = len(self.region)
        visits[:, email] += np.bincount(email_person, weights=click_p, minlength=n)
        orders[:, email] += np.bincount(email_person, weights=click_p * email_p, minlength=n)

        completed = orders * COMPLETED_SHARE
        total = completed.sum(axis=1)
        # P(no completed order before the day) × P(at least one today), shared over channels by their orders
        first = np.exp(-self.no_order_yet) * -np.expm1(-total)
        new = completed * np.divide(first, total, out=np.zeros_like(total), where=total > 0)[:, None]
        self.no_order_yet += total
        revenue = completed * self.order_value[:, None]
        by = {}
        for name, values in (
            ("sessions", visits),
            ("orders", orders),
            ("conversions", completed),
            ("revenue_usd", revenue),
            ("new_customers", new),
        ):
            by[name] = np.stack([values[self.region == r].sum(axis=0) for r in range(len(REGIONS))], axis=1)
        cost = np.zeros((len(CHANNEL_NAMES), len(REGIONS)))
        for c, channel in enumerate(CHANNEL_NAMES):
            spec = CHANNELS[channel]
            if spec.platform:
                clicks = (1 + EXTRA_CLICKS_PER_SESSION) * by["sessions"][
                    c
                ] + AD_GROUPS_PER_CAMPAIGN * EXTRA_CLICKS_PER_AD_GROUP
                cost[c] = clicks * spec.cpc_usd * np.array([REGION_CPC_FACTOR[r] for r in REGIONS])
        if len(sent):
            send_cost = np.bincount(
                self.region[email_person], weights=sent["cost"].to_numpy(dtype=float), minlength=len(REGIONS)
            )
            cost[email] += send_cost
        by["cost_usd"] = cost
        date = day_of(self.start, day).isoformat()
        self.frames.append(
            pd.DataFrame(
                {
                    "day": day,
                    "date": date,
                    "channel": np.repeat(CHANNEL_NAMES, len(REGIONS)),
                    "region": np.tile(REGIONS, len(CHANNEL_NAMES)),
                    **{name: np.round(by[name].ravel(), 6) for name in METRICS},
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        if not self.frames:
            return pd.DataFrame(columns=["day", "date", "channel", "region", *METRICS])
        return pd.concat(self.frames, ignore_index=True)
