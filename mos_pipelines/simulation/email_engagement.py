"""Email sends and engagement: who gets which variant, and the sent/delivered/opened/clicked/
bounced/unsubscribed events the email service provider reports.

Each campaign has a fixed audience and a fixed variant (or holdout) per person, drawn once. On a
send day, audience members with email-marketing consent get the email; holdout members are only
recorded in the truth. Clicks become sessions (see sessions.py), which fixes their time.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mos_pipelines.ingestion.contracts import SOURCES
from mos_pipelines.simulation.geography import REGIONS
from mos_pipelines.simulation.population import Population, segment_attributes
from mos_pipelines.simulation.response import ResponseModel
from mos_pipelines.simulation.scenario import HOLDOUT_VARIANT, EmailCampaignSpec, Scenario
from mos_pipelines.simulation.streams import Stream, rng
from mos_pipelines.simulation.timestamps import DAY_SECONDS, iso_utc

SEND_START_S = 300  # sends go out from 00:05 UTC ...
SEND_SPREAD_S = 1800  # ... over half an hour
LAST_EVENT_S = DAY_SECONDS - 60  # engagement recorded in the file of the send day
NOT_IN_AUDIENCE = -1
SEND_COLUMNS = {
    "day": "int64",
    "campaign_id": "object",
    "variant_id": "object",
    "is_holdout": "bool",
    "person_idx": "int64",
    "region": "object",
    "message_id": "object",
    "recipient_email": "object",
    "sent": "bool",
    "bounced": "bool",
    "delivered": "bool",
    "opened": "bool",
    "clicked": "bool",
    "unsubscribed": "bool",
    "conversion_multiplier": "float64",
    "cost": "float64",
    "sent_s": "float64",
    "delivered_s": "float64",
    "opened_s": "float64",
    "clicked_s": "float64",
    "unsubscribed_s": "float64",
}


@dataclass
class EmailAssignment:
    """Per campaign: each person's variant index, ``len(variants)`` for the holdout, -1 outside the audience."""

    variant: dict[str, np.ndarray]


def assign_variants(seed: int, population: Population, scenario: Scenario) -> EmailAssignment:
    generator = rng(seed, Stream.EMAIL_ASSIGNMENT)
    n = population.size
    out = {}
    for spec in scenario.email_campaigns:
        k = len(spec.variants)
        in_audience = generator.random(n) < spec.audience_share
        holdout = generator.random(n) < spec.holdout_share
        variant = np.where(holdout, k, generator.integers(0, k, n))
        out[spec.campaign_id] = np.where(in_audience, variant, NOT_IN_AUDIENCE)
    return EmailAssignment(out)


@dataclass
class EmailDay:
    """One day's sends (one row per recipient, holdout included) and what each recipient did."""

    sends: pd.DataFrame

    @property
    def clicks(self) -> pd.DataFrame:
        return self.sends[self.sends["clicked"]]


def simulate_sends(
    day: int,
    seed: int,
    population: Population,
    scenario: Scenario,
    assignment: EmailAssignment,
    allowed: np.ndarray,
    response: ResponseModel,
) -> EmailDay:
    """Who is emailed today and how they respond (times of clicks are set later by their sessions)."""
    generator = rng(seed, Stream.EMAIL, day)
    frames = []
    for spec in scenario.email_campaigns:
        if not spec.sends_on(day):
            continue
        variant = assignment.variant[spec.campaign_id]
        person = np.flatnonzero((variant != NOT_IN_AUDIENCE) & allowed)
        frames.append(campaign_sends(day, spec, person, variant[person], population, response, generator))
    if not frames:
        return EmailDay(empty_sends())
    return EmailDay(pd.concat(frames, ignore_index=True))


def campaign_sends(
    day: int,
    spec: EmailCampaignSpec,
    person: np.ndarray,
    variant: np.ndarray,
    population: Population,
    response: ResponseModel,
    generator: np.random.Generator,
) -> pd.DataFrame:
    """Sends of one campaign to ``person`` with ``variant`` indices (``len(spec.variants)`` = holdout, not sent)."""
    n = len(person)
    k = len(spec.variants)
    region = population.region_idx[person]
    holdout = variant == k
    open_p = np.zeros(n)
    click_p = np.zeros(n)
    conversion_multiplier = np.ones(n)
    attributes = segment_attributes(population, person) if response.scenario.segment_effects else {}
    for v, spec_variant in enumerate(spec.variants):
        rows = variant == v
        open_p[rows], click_p[rows], conversion_multiplier[rows] = response.recipient_rates(
            spec.campaign_id, spec_variant.variant_id, region[rows], {a: x[rows] for a, x in attributes.items()}
        )
    sent = ~holdout
    bounced = sent & (generator.random(n) < response.scenario.email.bounce_rate)
    delivered = sent & ~bounced
    opened = delivered & (generator.random(n) < open_p)
    clicked = opened & (generator.random(n) < click_p / np.maximum(open_p, 1e-12))
    unsubscribed = opened & ~clicked & (generator.random(n) < response.scenario.email.unsubscribe_rate)
    sent_s = day * DAY_SECONDS + SEND_START_S + generator.random(n) * SEND_SPREAD_S
    delivered_s = sent_s + 1 + generator.random(n) * 59
    # Opens without a click happen any time later that day; unsubscribes follow the open.
    opened_s = delivered_s + 60 + generator.random(n) * ((day * DAY_SECONDS + LAST_EVENT_S - 700) - delivered_s - 60)
    unsubscribed_s = opened_s + 10 + generator.random(n) * 590
    variant_ids = np.asarray([v.variant_id for v in spec.variants] + [HOLDOUT_VARIANT], dtype=object)
    message_id = np.full(n, "", dtype=object)
    sent_idx = np.flatnonzero(sent)
    message_id[sent_idx] = [f"{spec.campaign_id}.{day:04d}.{j:06d}@esp.mosdemo.example" for j in range(len(sent_idx))]
    return pd.DataFrame(
        {
            "day": day,
            "campaign_id": spec.campaign_id,
            "variant_id": variant_ids[variant],
            "is_holdout": holdout,
            "person_idx": person,
            "region": np.asarray(REGIONS, dtype=object)[region],
            "message_id": message_id,
            "recipient_email": population.people["marketing_email"].to_numpy()[person],
            "sent": sent,
            "bounced": bounced,
            "delivered": delivered,
            "opened": opened,
            "clicked": clicked,
            "unsubscribed": unsubscribed,
            "conversion_multiplier": conversion_multiplier,
            "cost": np.where(sent, spec.cost_per_send, 0.0),
            "sent_s": sent_s,
            "delivered_s": delivered_s,
            "opened_s": opened_s,
            "clicked_s": np.nan,
            "unsubscribed_s": unsubscribed_s,
        }
    )


def empty_sends() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in SEND_COLUMNS.items()})


def set_click_times(
    sends: pd.DataFrame, click_rows: np.ndarray, click_s: np.ndarray, generator: np.random.Generator
) -> None:
    """Clicks happen at the start of their session; the open happens between delivery and click."""
    sends.loc[click_rows, "clicked_s"] = click_s
    delivered = sends.loc[click_rows, "delivered_s"].to_numpy()
    sends.loc[click_rows, "opened_s"] = delivered + 30 + generator.random(len(click_rows)) * (click_s - 60 - delivered)


def email_rows(sends: pd.DataFrame, start: datetime.date) -> list[list[str]]:
    """email_events_<day>.csv rows, in time order."""
    parts = []
    for event, flag, time_col in (
        ("sent", "sent", "sent_s"),
        ("delivered", "delivered", "delivered_s"),
        ("bounced", "bounced", "delivered_s"),
        ("opened", "opened", "opened_s"),
        ("clicked", "clicked", "clicked_s"),
        ("unsubscribed", "unsubscribed", "unsubscribed_s"),
    ):
        rows = sends[sends[flag]]
        parts.append(
            pd.DataFrame(
                {
                    "message_id": rows["message_id"],
                    "campaign_id": rows["campaign_id"],
                    "variant_id": rows["variant_id"],
                    "recipient_email": rows["recipient_email"],
                    "event": event,
                    "seconds": rows[time_col],
                }
            )
        )
    events = pd.concat(parts, ignore_index=True).sort_values("seconds", kind="stable")
    events["occurred_at"] = iso_utc(start, events["seconds"].to_numpy())
    return events[list(email_header())].to_numpy().tolist()


def email_header() -> tuple[str, ...]:
    return tuple(f.name for f in SOURCES["email"].fields)
