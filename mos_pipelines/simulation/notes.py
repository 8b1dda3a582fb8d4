"""Sales notes about CRM contacts, written like reps write them (simulation/note_text.py), with the facts each
note states kept as truth (notes_facts.csv: product interest, budget and currency, decision timeline, competitors
still evaluated, role and seniority, pain point, next step and its date, sentiment)."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd

from mos_pipelines.simulation.crm import CrmRecords
from mos_pipelines.simulation.note_text import write_note
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
BUDGET_CURRENCY = {"NA": "USD", "EU": "EUR", "UK": "GBP", "APAC": "USD", "LATAM": "USD"}
COLUMNS = [
    "note_id",
    "person_id",
    "subject",
    "created_at",
    "product_interest",
    "budget_amount",
    "budget_currency",
    "timeline_start",
    "timeline_end",
    "competitor",
    "role",
    "seniority",
    "pain_point",
    "next_step",
    "next_step_date",
    "sentiment",
    "features",
]


def notes_day(
    day: int, seed: int, start: datetime.date, population: Population, crm: CrmRecords
) -> tuple[list[str], pd.DataFrame]:
    """crm_notes lines of ``day`` (JSON text, time order) and the facts each note states."""
    g = rng(seed, Stream.NOTES, day)
    f = crm.frame
    known = f[(f["system"] != "webinar") & (f["export_day"] <= day)].drop_duplicates("person_idx")
    p = NOTE_RATE * population.propensity_factor[known["person_idx"].to_numpy()]
    chosen = known[g.random(len(known)) < p]
    k = len(chosen)
    seconds = np.sort(day * DAY_SECONDS + 8 * 3600 + g.random(k) * 10 * 3600)
    stamps = iso_utc(start, seconds)
    people = population.people
    midnight = datetime.datetime.combine(start, datetime.time(), tzinfo=datetime.UTC)
    lines, facts = [], []
    for j, (person, record_id) in enumerate(zip(chosen["person_idx"], chosen["record_id"])):
        row = people.iloc[person]
        author = AUTHORS[g.integers(len(AUTHORS))]
        when = midnight + datetime.timedelta(seconds=float(seconds[j]))
        company = str(row["company"]).rstrip(".")  # company names may end with a period (Inc.)
        text, fact = write_note(
            g, when, str(row["first_name"]), company, BUDGET_CURRENCY[row["region"]], author.split()[0]
        )
        note_id = f"note_{day:04d}_{j:05d}"
        subject = record_id if g.random() < 0.6 else row["work_email"]
        lines.append(
            json.dumps(
                {"note_id": note_id, "subject": subject, "author": author, "created_at": stamps[j], "text": text},
                ensure_ascii=False,
            )
        )
        facts.append(
            {"note_id": note_id, "person_id": row["person_id"], "subject": subject, "created_at": stamps[j]}
            | fact.row()
        )
    frame = pd.DataFrame(facts, columns=COLUMNS).astype(object).astype({"budget_amount": "Int64"})
    return lines, frame
