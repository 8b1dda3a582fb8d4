"""Sales notes about CRM contacts: free text built from templates, with the facts they carry kept
as truth (product of interest, budget, decision timeline, competitor)."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd

from mos_pipelines.simulation.crm import CrmRecords
from mos_pipelines.simulation.population import Population
from mos_pipelines.simulation.streams import Stream, rng
from mos_pipelines.simulation.timestamps import DAY_SECONDS, iso_utc

NOTE_RATE = 0.008  # notes per known contact per day, at average propensity
AUTHORS = (
    "Dana Whitfield",
    "Marco Bellini",
    "Aisha Rahman",
    "Tom Becker",
    "Lucía Fernández",
    "Kenji Watanabe",
    "Priya Nair",
    "Sam O'Connor",
)
PRODUCTS_OF_INTEREST = (
    "Audience Builder",
    "Journey Orchestrator",
    "Attribution Suite",
    "Data Connectors",
    "Enterprise plan",
)
COMPETITORS = ("Braze", "Iterable", "Klaviyo", "Segment", "Salesforce Marketing Cloud", "Customer.io")
BUDGET_CURRENCY = {"NA": "USD", "EU": "EUR", "UK": "GBP", "APAC": "USD", "LATAM": "USD"}
CURRENCY_SIGN = {"USD": "$", "EUR": "€", "GBP": "£"}
FACT_SHARE = {"product": 0.8, "budget": 0.6, "timeline": 0.6, "competitor": 0.45}

OPENERS = (
    "Call with {first}.",
    "Met {first} ({title}) today.",
    "Follow-up email exchange with {first}.",
    "Discovery call, {first} from {company}.",
    "{first} replied to the outreach sequence.",
)
PRODUCT_SENTENCES = (
    "Interested in {product}.",
    "Main interest: {product}.",
    "Wants a deeper look at {product} for their team.",
)
BUDGET_SENTENCES = (
    "Budget is around {sign}{k}k.",
    "They have {amount:,} {currency} set aside for this.",
    "Budget approved: {k}k {currency}.",
)
TIMELINE_SENTENCES = (
    "Looking to decide by {quarter}.",
    "Timeline: {quarter}.",
    "Wants something live before the end of {quarter}.",
)
COMPETITOR_SENTENCES = (
    "Currently evaluating {competitor}.",
    "Also talking to {competitor}.",
    "Unhappy with {competitor}, their current tool.",
)
NO_FACTS = ("Left a voicemail, will try again next week.", "Sent the deck, no reply yet.")


def _quarter(date: datetime.date, ahead: int) -> str:
    q = (date.month - 1) // 3 + ahead
    return f"Q{q % 4 + 1} {date.year + q // 4}"


def notes_day(
    day: int, seed: int, start: datetime.date, population: Population, crm: CrmRecords
) -> tuple[list[str], pd.DataFrame]:
    """crm_notes lines of ``day`` (JSON text, time order) and the facts behind each note."""
    g = rng(seed, Stream.NOTES, day)
    f = crm.frame
    known = f[(f["system"] != "webinar") & (f["export_day"] <= day)].drop_duplicates("person_idx")
    p = NOTE_RATE * population.propensity_factor[known["person_idx"].to_numpy()]
    chosen = known[g.random(len(known)) < p]
    k = len(chosen)
    seconds = np.sort(day * DAY_SECONDS + 8 * 3600 + g.random(k) * 10 * 3600)
    stamps = iso_utc(start, seconds)
    people = population.people
    date = start + datetime.timedelta(days=day)
    lines, facts = [], []
    for j, (person, record_id) in enumerate(zip(chosen["person_idx"], chosen["record_id"])):
        row = people.iloc[person]
        currency = BUDGET_CURRENCY[row["region"]]
        fact = {
            "product": PRODUCTS_OF_INTEREST[g.integers(len(PRODUCTS_OF_INTEREST))]
            if g.random() < FACT_SHARE["product"]
            else None,
            "budget_amount": int(g.integers(2, 41)) * 5000 if g.random() < FACT_SHARE["budget"] else None,
            "timeline_quarter": _quarter(date, int(g.integers(1, 4))) if g.random() < FACT_SHARE["timeline"] else None,
            "competitor": COMPETITORS[g.integers(len(COMPETITORS))] if g.random() < FACT_SHARE["competitor"] else None,
        }
        opener = OPENERS[g.integers(len(OPENERS))].format(
            first=row["first_name"], title=row["job_title"], company=row["company"]
        )
        sentences = [opener.rstrip(".") + "."]  # company names may end with a period (Inc.)
        if fact["product"]:
            sentences.append(PRODUCT_SENTENCES[g.integers(3)].format(product=fact["product"]))
        if fact["budget_amount"]:
            amount = fact["budget_amount"]
            sentences.append(
                BUDGET_SENTENCES[g.integers(3)].format(
                    sign=CURRENCY_SIGN[currency], k=amount // 1000, amount=amount, currency=currency
                )
            )
        if fact["timeline_quarter"]:
            sentences.append(TIMELINE_SENTENCES[g.integers(3)].format(quarter=fact["timeline_quarter"]))
        if fact["competitor"]:
            sentences.append(COMPETITOR_SENTENCES[g.integers(3)].format(competitor=fact["competitor"]))
        if len(sentences) == 1:
            sentences.append(NO_FACTS[g.integers(len(NO_FACTS))])
        note_id = f"note_{day:04d}_{j:05d}"
        subject = record_id if g.random() < 0.6 else row["work_email"]
        author = AUTHORS[g.integers(len(AUTHORS))]
        lines.append(
            json.dumps(
                {
                    "note_id": note_id,
                    "subject": subject,
                    "author": author,
                    "created_at": stamps[j],
                    "text": " ".join(sentences),
                },
                ensure_ascii=False,
            )
        )
        facts.append(
            {
                "note_id": note_id,
                "person_id": row["person_id"],
                "subject": subject,
                **fact,
                "budget_currency": currency if fact["budget_amount"] else None,
            }
        )
    columns = [
        "note_id",
        "person_id",
        "subject",
        "product",
        "budget_amount",
        "budget_currency",
        "timeline_quarter",
        "competitor",
    ]
    frame = pd.DataFrame(facts, columns=columns).astype(object).astype({"budget_amount": "Int64"})
    return lines, frame
