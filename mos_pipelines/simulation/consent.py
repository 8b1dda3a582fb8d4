"""Consent per person and purpose: a snapshot on day 0, then grants, revocations and unsubscribes.

EU and UK people mostly start without consent (opt-in) and some grant it later; elsewhere most
start granted. Each person × purpose changes at most once by itself (a geometric waiting time,
independent of the horizon); an email unsubscribe also revokes ``email_marketing``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np

from mos_pipelines.ingestion.contracts import CONSENT_PURPOSES, SOURCES
from mos_pipelines.simulation.geography import REGIONS
from mos_pipelines.simulation.population import NEVER, Population
from mos_pipelines.simulation.scenario import Scenario
from mos_pipelines.simulation.streams import Stream, rng
from mos_pipelines.simulation.timestamps import DAY_SECONDS, iso_utc

EMAIL_MARKETING = CONSENT_PURPOSES.index("email_marketing")
SNAPSHOT_WINDOW_S = 240  # the day-0 snapshot is exported in the first minutes of day 0
SUBJECT_USER_ID_SHARE = 0.5  # signed-up people are identified by user id in half the consent records
SOURCE_BY_PURPOSE = {
    "email_marketing": "preference_center",
    "ad_personalization": "cookie_banner",
    "analytics": "cookie_banner",
}


@dataclass
class ConsentState:
    """The consent plan of every person, plus the unsubscribes that happen during the run."""

    initial: np.ndarray  # (people, purposes) granted before day 0
    change_day: np.ndarray  # (people, purposes) day of the one change (NEVER = none)
    subject: np.ndarray  # the identifier consent records use for each person
    region: np.ndarray
    unsubscribed_day: np.ndarray  # day of an email unsubscribe (NEVER = none)

    def email_allowed(self, day: int) -> np.ndarray:
        """Who may receive marketing email on ``day`` (changes of earlier days applied)."""
        changed = self.change_day[:, EMAIL_MARKETING] < day
        granted = np.where(changed, ~self.initial[:, EMAIL_MARKETING], self.initial[:, EMAIL_MARKETING])
        return granted & (self.unsubscribed_day >= day)

    def rows(
        self,
        day: int,
        start: datetime.date,
        generator: np.random.Generator,
        unsubscribes: tuple[np.ndarray, np.ndarray],
        email_subject: np.ndarray,
    ) -> list[list[str]]:
        """consent_<day>.csv: the snapshot (day 0), the day's changes and unsubscribes, by time."""
        if day == 0:
            person, purpose = np.nonzero(np.ones_like(self.initial))
            status = np.where(self.initial[person, purpose], "granted", "denied")
            seconds = generator.random(len(person)) * SNAPSHOT_WINDOW_S
            source = np.full(len(person), "initial_import", dtype=object)
        else:
            person, purpose = np.nonzero(self.change_day == day)
            status = np.where(self.initial[person, purpose], "revoked", "granted")
            seconds = day * DAY_SECONDS + generator.random(len(person)) * (DAY_SECONDS - 1)
            source = np.array([SOURCE_BY_PURPOSE[CONSENT_PURPOSES[k]] for k in purpose], dtype=object)
        unsub_person, unsub_seconds = unsubscribes
        subject = np.concatenate([self.subject[person], email_subject[unsub_person]])
        purposes = np.concatenate(
            [
                np.asarray(CONSENT_PURPOSES, dtype=object)[purpose],
                np.full(len(unsub_person), "email_marketing", dtype=object),
            ]
        )
        status = np.concatenate([status, np.full(len(unsub_person), "revoked")])
        source = np.concatenate([source, np.full(len(unsub_person), "email_unsubscribe", dtype=object)])
        region = self.region[np.concatenate([person, unsub_person])]
        seconds = np.concatenate([seconds, unsub_seconds])
        order = np.argsort(seconds, kind="stable")
        stamps = iso_utc(start, seconds[order])
        return [
            [subject[i], purposes[i], status[i], region[i], source[i], stamps[k]] for k, i in enumerate(order.tolist())
        ]


def plan_consent(seed: int, population: Population, scenario: Scenario) -> ConsentState:
    generator = rng(seed, Stream.CONSENT)
    n, k = population.size, len(CONSENT_PURPOSES)
    settings = scenario.consent
    grant_rate = np.array([settings.initial_grant_rate[r] for r in REGIONS])[population.region_idx]
    initial = generator.random((n, k)) < grant_rate[:, None]
    hazard = np.where(initial, settings.daily_revoke_rate, settings.daily_grant_rate)
    waiting = np.where(hazard > 0, generator.geometric(np.maximum(hazard, 1e-12)), NEVER)
    change_day = np.minimum(waiting, NEVER).astype(np.int64)
    people = population.people
    by_user_id = (population.signup_day < 0) & (generator.random(n) < SUBJECT_USER_ID_SHARE)
    subject = np.where(by_user_id, people["user_id"].to_numpy(), people["marketing_email"].to_numpy())
    return ConsentState(
        initial=initial,
        change_day=change_day,
        subject=subject,
        region=people["region"].to_numpy(),
        unsubscribed_day=np.full(n, NEVER, dtype=np.int64),
    )


def consent_header() -> tuple[str, ...]:
    return tuple(f.name for f in SOURCES["consent"].fields)
