"""Visits to the website: how many sessions each person has on a day, through which channel and
campaign, on which device, when, and what happens in them (sign-up, login, order, ...).

Session boundaries are exact for a 30-minute-inactivity sessionisation: a session lasts at most
35 minutes (at most 8 events, gaps up to 5 minutes), and a person's sessions on a day are placed in
slots so that consecutive sessions are more than 31 minutes apart, also across midnight.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mos_pipelines.simulation.campaigns import WEBINAR_CAMPAIGN_ID, Campaign, paid_campaign_id
from mos_pipelines.simulation.channels import (
    CHANNEL_NAMES,
    CHANNELS,
    SEARCH_TERMS,
    SESSION_CHANNEL_MIX,
    UTM_CASE_NOISE_RATE,
)
from mos_pipelines.simulation.geography import REGIONS
from mos_pipelines.simulation.population import Population
from mos_pipelines.simulation.response import ResponseModel
from mos_pipelines.simulation.scenario import Scenario
from mos_pipelines.simulation.streams import Stream, rng
from mos_pipelines.simulation.timestamps import DAY_SECONDS, day_of

MAX_EVENTS = 8
MIN_GAP_S = 5.0
MAX_GAP_S = 300.0
MAX_SESSION_S = (MAX_EVENTS - 1) * MAX_GAP_S
QUIET_GAP_S = 31 * 60  # more than the 30-minute sessionisation cut-off
SLOT_S = MAX_SESSION_S + QUIET_GAP_S
FIRST_SESSION_S = 3600  # sessions start after 01:00 UTC, once the morning emails are out
MAX_SESSIONS_PER_DAY = int((DAY_SECONDS - QUIET_GAP_S - FIRST_SESSION_S - MAX_SESSION_S) // SLOT_S) + 1
EVENTS_GEOMETRIC_P = 0.3  # events per session: 1 + geometric, capped at MAX_EVENTS
LOGIN_SHARE = 0.6  # sessions of signed-up people in which they log in
DEMO_REQUEST_RATE = 0.01  # per session at average propensity
PRIMARY_DEVICE_WEIGHT = 3.0

REGULAR, EMAIL_CLICK, WEBINAR_REGISTRATION = 0, 1, 2


@dataclass
class CampaignIndex:
    """Positions of campaigns in the campaign list, for vectorised lookups."""

    campaigns: list[Campaign]
    paid: np.ndarray  # [channel, region] -> campaign position, -1 for unpaid channels
    by_id: dict[str, int]

    @classmethod
    def build(cls, campaigns: list[Campaign]) -> CampaignIndex:
        by_id = {c.campaign_id: i for i, c in enumerate(campaigns)}
        paid = np.full((len(CHANNEL_NAMES), len(REGIONS)), -1, dtype=np.int64)
        for c, channel in enumerate(CHANNEL_NAMES):
            for r, region in enumerate(REGIONS):
                paid[c, r] = by_id.get(paid_campaign_id(channel, region), -1)
        return cls(campaigns, paid, by_id)


@dataclass
class DaySessions:
    """The sessions of one day, ordered by start time (numpy columns of equal length)."""

    day: int
    person: np.ndarray
    device: np.ndarray  # row in population.devices
    channel: np.ndarray  # index in CHANNEL_NAMES
    campaign: np.ndarray  # position in the campaign list, -1 for none
    ad_group: np.ndarray  # 0/1 for paid campaigns, -1 otherwise
    variant_id: np.ndarray  # email variant, "" otherwise
    email_send_row: np.ndarray  # row of the email send whose click started it, -1 otherwise
    email_message_id: np.ndarray  # message id of that send (the click's tracking token is its hash), None otherwise
    start_s: np.ndarray  # seconds since day 0 00:00 UTC
    n_events: np.ndarray
    signup: np.ndarray
    login: np.ndarray
    webinar: np.ndarray
    demo: np.ndarray
    convert: np.ndarray
    referrer_pick: np.ndarray
    utm_upper: np.ndarray

    def __len__(self) -> int:
        return len(self.person)

    @property
    def session_ids(self) -> list[str]:
        return [f"S{self.day:04d}-{k:06d}" for k in range(len(self))]


def simulate_sessions(
    day: int,
    seed: int,
    start: datetime.date,
    population: Population,
    scenario: Scenario,
    response: ResponseModel,
    index: CampaignIndex,
    email_clicks: pd.DataFrame,
    webinar_people: np.ndarray,
) -> DaySessions:
    """All sessions of ``day``: ordinary visits plus those triggered by email clicks and webinar sign-ups."""
    g = rng(seed, Stream.SESSIONS, day)
    n = population.size
    factor = population.propensity_factor
    weekend = day_of(start, day).weekday() >= 5
    rate = (
        scenario.behaviour.sessions_per_person_day
        * population.engagement
        * (0.5 + 0.5 * factor)
        * (scenario.behaviour.weekend_factor if weekend else 1.0)
        * scenario.volume_factor(day)
    )
    n_regular = g.poisson(rate)
    signing_up = population.signup_day == day
    n_regular[signing_up] = np.maximum(n_regular[signing_up], 1)

    mix_channels = np.array([CHANNEL_NAMES.index(c) for c in SESSION_CHANNEL_MIX])
    mix_p = np.array(list(SESSION_CHANNEL_MIX.values()))
    regular_person = np.repeat(np.arange(n), n_regular)
    n_clicks, n_webinar = len(email_clicks), len(webinar_people)
    person = np.concatenate(
        [regular_person, email_clicks["person_idx"].to_numpy(dtype=np.int64), webinar_people.astype(np.int64)]
    )
    kind = np.concatenate(
        [
            np.full(len(regular_person), REGULAR),
            np.full(n_clicks, EMAIL_CLICK),
            np.full(n_webinar, WEBINAR_REGISTRATION),
        ]
    )
    channel = np.concatenate(
        [
            mix_channels[g.choice(len(mix_p), size=len(regular_person), p=mix_p / mix_p.sum())],
            np.full(n_clicks, CHANNEL_NAMES.index("email")),
            np.full(n_webinar, CHANNEL_NAMES.index("webinar")),
        ]
    )
    send_row = np.concatenate(
        [np.full(len(regular_person), -1), email_clicks.index.to_numpy(dtype=np.int64), np.full(n_webinar, -1)]
    )

    # Keep at most MAX_SESSIONS_PER_DAY per person, dropping ordinary visits first.
    order = np.lexsort((g.random(len(person)), kind == REGULAR, person))
    rank = _rank_within(person[order])
    keep = np.sort(order[rank < MAX_SESSIONS_PER_DAY])
    person, kind, channel, send_row = person[keep], kind[keep], channel[keep], send_row[keep]

    start_s = _session_starts(day, person, g)
    m = len(person)
    region = population.region_idx[person]
    weights_total = PRIMARY_DEVICE_WEIGHT + population.device_count[person] - 1
    pick = g.random(m) * weights_total
    device = population.device_start[person] + np.where(
        pick < PRIMARY_DEVICE_WEIGHT, 0, 1 + np.floor(pick - PRIMARY_DEVICE_WEIGHT).astype(np.int64)
    )

    campaign = index.paid[channel, region]
    ad_group = np.where(campaign >= 0, g.integers(0, 2, m), -1)
    variant_id = np.full(m, "", dtype=object)
    message_id = np.full(m, None, dtype=object)
    multiplier = np.ones(m)
    clicked = send_row >= 0
    if clicked.any():
        rows = email_clicks.loc[send_row[clicked]]
        campaign[clicked] = [index.by_id[c] for c in rows["campaign_id"]]
        variant_id[clicked] = rows["variant_id"].to_numpy()
        message_id[clicked] = rows["message_id"].to_numpy()
        multiplier[clicked] = rows["conversion_multiplier"].to_numpy()
    campaign[channel == CHANNEL_NAMES.index("webinar")] = index.by_id[WEBINAR_CAMPAIGN_ID]

    # The first session of the day of someone signing up today is the sign-up session.
    by_time = np.lexsort((start_s, person))
    first = np.zeros(m, dtype=bool)
    first[by_time[_rank_within(person[by_time]) == 0]] = True
    signup = first & signing_up[person]
    login = (population.signup_day[person] < day) & (g.random(m) < LOGIN_SHARE)
    webinar = kind == WEBINAR_REGISTRATION
    demo = g.random(m) < DEMO_REQUEST_RATE * factor[person]
    convert = g.random(m) < response.session_conversion(channel, region, factor[person], multiplier)
    required = 1 + 2 * signup + login + webinar + demo + convert
    n_events = np.clip(np.maximum(g.geometric(EVENTS_GEOMETRIC_P, m), required), 1, MAX_EVENTS)

    sessions = DaySessions(
        day=day,
        person=person,
        device=device,
        channel=channel,
        campaign=campaign,
        ad_group=ad_group,
        variant_id=variant_id,
        email_send_row=send_row,
        email_message_id=message_id,
        start_s=start_s,
        n_events=n_events,
        signup=signup,
        login=login,
        webinar=webinar,
        demo=demo,
        convert=convert,
        referrer_pick=g.integers(0, 1 << 30, m),
        utm_upper=g.random(m) < UTM_CASE_NOISE_RATE,
    )
    return _reorder(sessions, np.lexsort((person, start_s)))


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within runs of equal values of a sorted array."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(groups[1:] != groups[:-1]) + 1]
    lengths = np.diff(np.r_[starts, len(groups)])
    return np.arange(len(groups)) - np.repeat(starts, lengths)


def _session_starts(day: int, person: np.ndarray, g: np.random.Generator) -> np.ndarray:
    """Start times: each person's sessions in slots at least SLOT_S apart, all within the day."""
    m = len(person)
    counts = np.bincount(person, minlength=int(person.max()) + 1 if m else 0)[person]
    room = DAY_SECONDS - QUIET_GAP_S - FIRST_SESSION_S - MAX_SESSION_S - (counts - 1) * SLOT_S
    offset = g.random(m) * room
    order = np.lexsort((offset, person))
    slot = np.empty(m, dtype=np.int64)
    slot[order] = _rank_within(person[order])
    start = day * DAY_SECONDS + FIRST_SESSION_S + offset + slot * SLOT_S
    return np.round(start, 3)


def _reorder(sessions: DaySessions, order: np.ndarray) -> DaySessions:
    fields = {k: v[order] for k, v in vars(sessions).items() if isinstance(v, np.ndarray)}
    return DaySessions(day=sessions.day, **fields)


def session_utm(sessions: DaySessions, campaigns: list[Campaign]) -> pd.DataFrame:
    """UTM tags and referrer of each session's landing page (None where a channel has none)."""
    m = len(sessions)
    source = np.full(m, None, dtype=object)
    medium = np.full(m, None, dtype=object)
    name = np.full(m, None, dtype=object)
    content = np.full(m, None, dtype=object)
    term = np.full(m, None, dtype=object)
    referrer = np.full(m, None, dtype=object)
    for c, channel_name in enumerate(CHANNEL_NAMES):
        rows = np.flatnonzero(sessions.channel == c)
        if len(rows) == 0:
            continue
        channel = CHANNELS[channel_name]
        refs = np.asarray(channel.referrers, dtype=object)[sessions.referrer_pick[rows] % len(channel.referrers)]
        referrer[rows] = np.where(refs == "", None, refs)
        if channel.utm_source is None:
            continue
        upper = sessions.utm_upper[rows]
        source[rows] = np.where(upper, channel.utm_source.capitalize(), channel.utm_source)
        medium[rows] = np.where(upper, channel.utm_medium.upper(), channel.utm_medium)  # type: ignore[union-attr]
        camp = sessions.campaign[rows]
        name[rows] = [campaigns[k].campaign_id if k >= 0 else None for k in camp]
        if channel.platform:
            content[rows] = [campaigns[k].ad_group_ids[a] for k, a in zip(camp, sessions.ad_group[rows])]
            if channel_name == "paid_search":
                term[rows] = np.asarray(SEARCH_TERMS, dtype=object)[sessions.ad_group[rows]]
        elif channel_name == "email":
            content[rows] = sessions.variant_id[rows]
    return pd.DataFrame(
        {
            "utm_source": source,
            "utm_medium": medium,
            "utm_campaign": name,
            "utm_content": content,
            "utm_term": term,
            "referrer": referrer,
        }
    )
