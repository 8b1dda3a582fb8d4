"""``respond(sends)``: the world's answer to what activation sent (DESIGN.md §3, the learning loop).

Given the sends of one day (campaign × recipient address × variant, decided outside the world),
the world draws what each recipient does from its true arm rates (``ResponseModel``): bounces,
opens, clicks and unsubscribes; clicks then become website sessions and possibly orders in the day's
simulation (``world.SteppedWorld``), and everything is written as the next landing files.
Deterministic: the draws come from the stream ``(seed, RESPOND, day)`` over the sends in a
canonical order (campaign order of the scenario, then the recipient's position in the population),
so the same sends give the same outcomes whatever order they were passed in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mos_pipelines.simulation.email_engagement import EmailDay, campaign_sends, empty_sends
from mos_pipelines.simulation.population import Population
from mos_pipelines.simulation.response import ResponseModel
from mos_pipelines.simulation.scenario import HOLDOUT_VARIANT, Scenario
from mos_pipelines.simulation.streams import Stream, rng

SEND_FIELDS = ("campaign_id", "recipient_email", "variant_id")


class SendsError(ValueError):
    """The sends given to the world are invalid; the message names the row and the field."""


def respond(
    day: int,
    seed: int,
    population: Population,
    scenario: Scenario,
    response: ResponseModel,
    sends: pd.DataFrame,
) -> EmailDay:
    """Outcomes of ``sends`` (columns campaign_id, recipient_email, variant_id) on ``day``.

    ``variant_id`` is one of the campaign's variants, or ``holdout`` for an audience member who is
    deliberately not sent anything (recorded in the truth, no email event). A recipient address must
    be a person's marketing address; a campaign must be one of the scenario's email campaigns.
    """
    missing = [f for f in SEND_FIELDS if f not in sends.columns]
    if missing:
        raise SendsError(
            f"sends of day {day}: missing column(s) {', '.join(missing)} (expected {', '.join(SEND_FIELDS)})"
        )
    if sends.empty:
        return EmailDay(empty_sends())
    person_of = pd.Series(np.arange(population.size), index=population.people["marketing_email"].to_numpy())
    person_of = person_of[~person_of.index.duplicated(keep="first")]
    specs = {spec.campaign_id: spec for spec in scenario.email_campaigns}
    frame = sends.reset_index(drop=True)
    person = frame["recipient_email"].map(person_of)
    for row in np.flatnonzero(person.isna().to_numpy())[:1]:
        raise SendsError(
            f"sends of day {day}, row {row}: field recipient_email: "
            f"{frame.at[row, 'recipient_email']!r} is no person's address in this world"
        )
    frame = frame.assign(person_idx=person.astype(np.int64))
    for row in np.flatnonzero(~frame["campaign_id"].isin(specs).to_numpy())[:1]:
        raise SendsError(
            f"sends of day {day}, row {row}: field campaign_id: {frame.at[row, 'campaign_id']!r} is not an "
            f"email campaign of scenario {scenario.name!r} (known: {', '.join(specs)})"
        )
    duplicated = frame.duplicated(["campaign_id", "person_idx"])
    for row in np.flatnonzero(duplicated.to_numpy())[:1]:
        raise SendsError(
            f"sends of day {day}, row {row}: field recipient_email: {frame.at[row, 'recipient_email']!r} "
            f"appears twice for campaign {frame.at[row, 'campaign_id']!r}"
        )
    generator = rng(seed, Stream.RESPOND, day)
    parts = []
    for spec in scenario.email_campaigns:  # canonical order: scenario campaigns, then population position
        rows = frame[frame["campaign_id"] == spec.campaign_id].sort_values("person_idx", kind="stable")
        if rows.empty:
            continue
        index = {v.variant_id: k for k, v in enumerate(spec.variants)} | {HOLDOUT_VARIANT: len(spec.variants)}
        variant = rows["variant_id"].map(index)
        for row in variant.index[variant.isna()][:1]:
            raise SendsError(
                f"sends of day {day}, row {row}: field variant_id: {frame.at[row, 'variant_id']!r} is not a "
                f"variant of {spec.campaign_id} (known: {', '.join(index)})"
            )
        parts.append(
            campaign_sends(
                day,
                spec,
                rows["person_idx"].to_numpy(dtype=np.int64),
                variant.to_numpy(dtype=np.int64),
                population,
                response,
                generator,
            )
        )
    return EmailDay(pd.concat(parts, ignore_index=True))
