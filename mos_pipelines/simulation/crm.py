"""CRM contact records in HubSpot, Salesforce and the webinar tool, exported as daily deltas.

Every record is planned once for the whole (unbounded) timeline: who it belongs to, when it is
created and possibly modified, and how the system distorts the person's details. A day's export
holds the records created or modified that day, so a longer run only adds files. Records created
before day 0 are exported on day 0.

A scenario can plant a feature drift (``crm.reexports``): on its day a system exports *every* record
it holds again, as a full sync does, with some fields shuffled across the records (a broken column
mapping). The shuffled values are real titles or companies of other contacts, so nothing looks
malformed; only the link between a contact and its title or company is gone.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mos_pipelines.ingestion.contracts import CRM_SYSTEMS
from mos_pipelines.simulation.geography import COUNTRIES, COUNTRY_INDEX
from mos_pipelines.simulation.identity_noise import IdentityNoiser
from mos_pipelines.simulation.names import JOB_TITLES
from mos_pipelines.simulation.phones import PHONE_STYLES, write_phone
from mos_pipelines.simulation.population import NEVER, Population
from mos_pipelines.simulation.scenario import CrmReexport, Scenario
from mos_pipelines.simulation.streams import Stream, rng
from mos_pipelines.simulation.timestamps import DAY_SECONDS, formatted, iso_utc

SYSTEMS = ("hubspot", "salesforce", "webinar")
GENERIC = "generic"  # a bring-your-own export (canonical columns), only when the scenario asks for one
FILE_STEMS = {"hubspot": "contacts", "salesforce": "contacts", "webinar": "registrants", GENERIC: "contacts"}
BEFORE_START_SHARE = 0.5  # records that already exist on day 0
MAX_AGE_DAYS = 720  # how far before day 0 the oldest records were created
CREATION_DAILY_HAZARD = 1 / 45
UPDATE_DAILY_HAZARD = 1 / 20
WEBINAR_FIRST_DAY = 6  # webinar episodes run every WEBINAR_EVERY_DAYS days from this day
WEBINAR_EVERY_DAYS = 14
WEBINAR_ATTENDANCE = 0.45


def webinar_episode_day(day: np.ndarray) -> np.ndarray:
    """Day of the first webinar episode on or after ``day``."""
    return WEBINAR_FIRST_DAY + WEBINAR_EVERY_DAYS * np.ceil((day - WEBINAR_FIRST_DAY) / WEBINAR_EVERY_DAYS).astype(
        np.int64
    )


@dataclass
class CrmRecords:
    """All CRM records of the world, one row per record, with the rows each export writes."""

    frame: pd.DataFrame  # system, record_id, person_idx, created/export/update day, created/modified/updated_s
    created_rows: list[list[str]]  # the record as first exported
    updated_rows: list[list[str] | None]  # the record as exported again when modified (None: never)
    reexports: dict[tuple[str, int], list[list[str]]] = field(default_factory=dict)  # (system, day) -> rows

    def export(self, system: str, day: int) -> list[list[str]]:
        """Rows of ``system``'s export file for ``day``, in order of modification time."""
        if (system, day) in self.reexports:
            return self.reexports[(system, day)]
        f = self.frame
        created = np.flatnonzero((f["system"].to_numpy() == system) & (f["export_day"].to_numpy() == day))
        updated = np.flatnonzero((f["system"].to_numpy() == system) & (f["update_day"].to_numpy() == day))
        times = np.concatenate([f["created_s"].to_numpy()[created], f["updated_s"].to_numpy()[updated]])
        rows = [self.created_rows[i] for i in created] + [self.updated_rows[i] for i in updated]  # type: ignore[misc]
        return [rows[k] for k in np.argsort(times, kind="stable")]

    def webinar_registrations(self, day: int) -> np.ndarray:
        """People who registered for a webinar on ``day`` (day >= 0)."""
        f = self.frame
        mask = (f["system"].to_numpy() == "webinar") & (f["created_day"].to_numpy() == day)
        return np.unique(f["person_idx"].to_numpy()[mask])


def _record_ids(generator: np.random.Generator, system: str, n: int) -> list[str]:
    if system == "hubspot":
        return [str(10**10 + x) for x in generator.choice(9 * 10**10, size=n, replace=False).tolist()]
    if system == "salesforce":
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        out = []
        for x in generator.choice(62**10, size=n, replace=False).tolist():
            chars = []
            for _ in range(10):
                x, r = divmod(x, 62)
                chars.append(alphabet[r])
            out.append("0035g" + "".join(chars) + "AAI")
        return out
    return [f"reg_{x:08x}" for x in generator.choice(16**8, size=n, replace=False).tolist()]


def plan_crm_records(seed: int, population: Population, scenario: Scenario, start: datetime.date) -> CrmRecords:
    """Decide every CRM record of the world (independent of the number of days)."""
    generator = rng(seed, Stream.CRM)
    n = population.size
    presence = scenario.crm.presence
    frames = []
    for system in SYSTEMS:
        p = np.full(n, presence[system])
        if system == "salesforce":  # sales works the promising leads
            p = np.clip(p * (0.5 + 0.5 * population.propensity_factor), 0, 0.95)
        present = np.flatnonzero(generator.random(n) < p)
        twice = present[generator.random(len(present)) < scenario.identity_noise.duplicate_record_rate]
        person_idx = np.sort(np.concatenate([present, twice]), kind="stable")
        m = len(person_idx)
        before = generator.random(m) < BEFORE_START_SHARE
        created_day = np.where(
            before, -generator.integers(1, MAX_AGE_DAYS + 1, m), generator.geometric(CREATION_DAILY_HAZARD, m) - 1
        )
        created_s = created_day * DAY_SECONDS + generator.integers(7 * 3600, 20 * 3600, m)
        update_gap = generator.geometric(UPDATE_DAILY_HAZARD, m)
        export_day = np.maximum(created_day, 0)
        if system == "webinar":  # attendance is known the day after the episode
            episode = webinar_episode_day(created_day)
            update_day = np.where(episode >= 0, episode + 1, NEVER)
        else:
            update_day = np.where(generator.random(m) < scenario.crm.update_rate, export_day + update_gap, NEVER)
        updated_s = np.where(
            update_day < NEVER, update_day * DAY_SECONDS + generator.integers(7 * 3600, 20 * 3600, m), created_s
        )
        # Records exported on day 0 were last modified between their creation and day 0.
        modified_s = np.where(created_s < 0, created_s - created_s * generator.random(m), created_s).astype(np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "system": system,
                    "record_id": _record_ids(generator, system, m),
                    "person_idx": person_idx,
                    "created_day": created_day,
                    "export_day": export_day,
                    "update_day": update_day,
                    "created_s": created_s,
                    "modified_s": modified_s,
                    "updated_s": updated_s,
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    created_rows, updated_rows = _render(seed, frame, population, scenario, start)
    if scenario.crm.generic.presence > 0:  # its own streams: the other systems' records are the same with or without it
        generic, generic_rows = _plan_generic(seed, population, scenario, start)
        frame = pd.concat([frame, generic], ignore_index=True)
        created_rows += generic_rows
        updated_rows += [None] * len(generic_rows)
    records = CrmRecords(frame, created_rows, updated_rows)
    for reexport in scenario.crm.reexports:
        for system in reexport.systems:
            records.reexports[(system, reexport.day)] = _reexport_rows(seed, records, system, reexport, start)
    return records


def crm_systems(scenario: Scenario) -> tuple[str, ...]:
    """The systems that export files: the three simulated ones, and ``generic`` when the scenario has it."""
    return SYSTEMS + ((GENERIC,) if scenario.crm.generic.presence > 0 else ())


def _plan_generic(
    seed: int, population: Population, scenario: Scenario, start: datetime.date
) -> tuple[pd.DataFrame, list[list[str]]]:
    """Records of the generic export: people present there get 1 + Poisson(mean - 1) records each (lists
    merged from several sources), created like the other systems' records and never modified."""
    spec = scenario.crm.generic
    generator = rng(seed, Stream.CRM_GENERIC)
    n = population.size
    present = np.flatnonzero(generator.random(n) < spec.presence)
    copies = 1 + generator.poisson(spec.records_per_person - 1, len(present))
    person_idx = np.repeat(present, copies)
    m = len(person_idx)
    before = generator.random(m) < BEFORE_START_SHARE
    created_day = np.where(
        before, -generator.integers(1, MAX_AGE_DAYS + 1, m), generator.geometric(CREATION_DAILY_HAZARD, m) - 1
    )
    created_s = created_day * DAY_SECONDS + generator.integers(7 * 3600, 20 * 3600, m)
    modified_s = np.where(created_s < 0, created_s - created_s * generator.random(m), created_s).astype(np.int64)
    frame = pd.DataFrame(
        {
            "system": GENERIC,
            "record_id": [f"g{x:09d}" for x in generator.choice(10**9, size=m, replace=False).tolist()],
            "person_idx": person_idx,
            "created_day": created_day,
            "export_day": np.maximum(created_day, 0),
            "update_day": NEVER,
            "created_s": created_s,
            "modified_s": modified_s,
            "updated_s": created_s,
        }
    )
    noise = IdentityNoiser(scenario.identity_noise, rng(seed, Stream.CRM_GENERIC_NOISE))
    people = population.people
    fields = set(spec.fields)
    created = iso_utc(start, frame["created_s"].to_numpy())
    modified = iso_utc(start, frame["modified_s"].to_numpy())
    rows = []
    for i, (record_id, p) in enumerate(zip(frame["record_id"], person_idx.tolist())):
        person = people.iloc[p]
        country = COUNTRIES[COUNTRY_INDEX[person["country"]]]
        first, last = noise.names(person["first_name"], person["last_name"])
        values = {
            "first_name": first,
            "last_name": last,
            "email": noise.email(person["work_email"], person["personal_email"]),
            "phone": noise.phone(population.phones[p]),
            "company": noise.company(person["company"], country.legal_suffixes),
            "job_title": noise.missing(noise.noisy_text(person["job_title"])),
            "country": noise.missing(country.name),
            "city": noise.place(person["city"]),
            "postcode": noise.place(person["postcode"]),
            "birth_date": noise.missing(_mistyped_date(noise, person["birth_date"], spec.birth_date_error_rate)),
        }
        record = {"source_record_id": record_id, "full_name": "", "created_at": created[i], "updated_at": modified[i]}
        record.update({k: (v if k in fields else "") for k, v in values.items()})
        rows.append(_ordered(GENERIC, record))
    return frame, rows


def _mistyped_date(noise: IdentityNoiser, iso: str, rate: float) -> str:
    """``iso`` (YYYY-MM-DD), or at ``rate`` a typing error: a digit changed, day and month swapped (an invalid
    date when the day is above 12, as systems that store text keep it), or the year off by one."""
    if not iso or not noise.chance(rate):
        return iso
    year, month, day = iso.split("-")
    kind = int(noise.uniform() * 3)
    if kind == 0:
        digits = list(year + month + day)
        k = int(noise.uniform() * len(digits))
        digits[k] = str(int(noise.uniform() * 10))
        text = "".join(digits)
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    if kind == 1:
        return f"{year}-{day}-{month}"
    return f"{int(year) + (1 if noise.chance(0.5) else -1):04d}-{month}-{day}"


REEXPORT_COLUMNS = {  # scenario field -> the system's column
    "hubspot": {"job_title": "Job Title", "company": "Company Name", "modified": "Last Modified Date"},
    "salesforce": {"job_title": "Title", "company": "AccountName", "modified": "LastModifiedDate"},
}


def _reexport_rows(
    seed: int, records: CrmRecords, system: str, reexport: CrmReexport, start: datetime.date
) -> list[list[str]]:
    """Every record ``system`` holds on the day, in its latest version, with the fields shuffled."""
    f, day = records.frame, reexport.day
    held = np.flatnonzero((f["system"].to_numpy() == system) & (f["export_day"].to_numpy() <= day))
    update_day = f["update_day"].to_numpy()
    rows = [
        list(records.updated_rows[i] if update_day[i] <= day else records.created_rows[i])  # type: ignore[arg-type]
        for i in held
    ]
    columns = list(CRM_SYSTEMS[system].columns)
    names = REEXPORT_COLUMNS[system]
    g = rng(seed, Stream.CRM_REEXPORT, day)
    for name in reexport.shuffle:
        k = columns.index(names[name])
        values = [row[k] for row in rows]
        for row, j in zip(rows, g.permutation(len(rows))):
            row[k] = values[j]
    seconds = day * DAY_SECONDS + 5 * 3600 + np.arange(len(rows))  # the sync runs at 05:00 UTC, one record a second
    stamps = iso_utc(start, seconds) if system == "salesforce" else formatted(start, seconds, "%Y-%m-%d %H:%M")
    k = columns.index(names["modified"])
    for row, stamp in zip(rows, stamps):
        row[k] = stamp
    return rows


def _render(
    seed: int, frame: pd.DataFrame, population: Population, scenario: Scenario, start: datetime.date
) -> tuple[list[list[str]], list[list[str] | None]]:
    """Each record's columns as the system exports them, with identity noise applied."""
    noise = IdentityNoiser(scenario.identity_noise, rng(seed, Stream.CRM_NOISE))
    people = population.people
    cols = {
        c: people[c].to_numpy()
        for c in (
            "first_name",
            "last_name",
            "work_email",
            "personal_email",
            "company",
            "job_title",
            "persona",
            "country",
            "city",
            "postcode",
            "birth_date",
        )
    }
    stamps = {
        "hubspot": [
            formatted(start, frame[c].to_numpy(), "%Y-%m-%d %H:%M") for c in ("created_s", "modified_s", "updated_s")
        ],
        "salesforce": [iso_utc(start, frame[c].to_numpy()) for c in ("created_s", "modified_s", "updated_s")],
        "webinar": [formatted(start, frame["created_s"].to_numpy(), "%m/%d/%Y %H:%M")] * 3,
    }
    episode = webinar_episode_day(frame["created_day"].to_numpy())
    update_day = frame["update_day"].to_numpy()
    record_ids = frame["record_id"].to_numpy()
    created_rows: list[list[str]] = []
    updated_rows: list[list[str] | None] = []
    for i, (system, p) in enumerate(zip(frame["system"].to_numpy(), frame["person_idx"].to_numpy())):
        country = COUNTRIES[COUNTRY_INDEX[cols["country"][p]]]
        first_name, last_name = noise.names(cols["first_name"][p], cols["last_name"][p])
        email = noise.email(cols["work_email"][p], cols["personal_email"][p])
        phone = noise.phone(population.phones[p])
        company = noise.company(cols["company"][p], country.legal_suffixes)
        title = noise.missing(cols["job_title"][p])
        city, postcode = noise.place(cols["city"][p]), noise.place(cols["postcode"][p])
        created, modified, updated = (stamps[system][k][i] for k in range(3))
        if system == "hubspot":
            record = {
                "Record ID": record_ids[i],
                "First Name": first_name,
                "Last Name": last_name,
                "Email": email,
                "Phone Number": phone,
                "Company Name": company,
                "Job Title": title,
                "Country/Region": noise.missing(country.name),
                "City": city,
                "Postal Code": postcode,
                "Create Date": created,
                "Last Modified Date": modified,
            }
        elif system == "salesforce":
            mobile = noise.chance(0.5)
            record = {
                "Id": record_ids[i],
                "FirstName": first_name,
                "LastName": last_name,
                "Email": email,
                "Phone": "" if mobile else phone,
                "MobilePhone": phone if mobile else "",
                "AccountName": company,
                "Title": title,
                "MailingCountry": noise.missing(country.code),
                "MailingCity": city,
                "MailingPostalCode": postcode,
                "Birthdate": noise.missing(cols["birth_date"][p]),
                "CreatedDate": created,
                "LastModifiedDate": modified,
            }
        else:
            full_name = " ".join(x for x in (first_name, last_name) if x)
            if full_name and noise.chance(0.15):
                full_name = full_name.lower()
            record = {
                "registrant_id": record_ids[i],
                "full_name": full_name,
                "email": email,
                "phone": phone,
                "company": company,
                "country": noise.choose(country.free_text),
                "webinar_id": f"wb-{(start + datetime.timedelta(days=int(episode[i]))).isoformat()}",
                "registered_at": created,
                "attended": _attended(noise) if episode[i] < 0 else "",
            }
        created_rows.append(_ordered(system, record))
        if update_day[i] >= NEVER:
            updated_rows.append(None)
            continue
        if system == "webinar":
            record["attended"] = _attended(noise)
        else:  # a later edit: the phone gets filled in, or the title changes
            phone_column = "Phone Number" if system == "hubspot" else "Phone"
            title_column = "Job Title" if system == "hubspot" else "Title"
            if not record[phone_column] and not record.get("MobilePhone"):
                record[phone_column] = write_phone(population.phones[p], noise.choose(PHONE_STYLES))
            else:
                titles = JOB_TITLES[cols["persona"][p]]
                record[title_column] = titles[min(titles.index(cols["job_title"][p]) + 1, len(titles) - 1)]
            record["Last Modified Date" if system == "hubspot" else "LastModifiedDate"] = updated
        updated_rows.append(_ordered(system, record))
    return created_rows, updated_rows


def _attended(noise: IdentityNoiser) -> str:
    return "Yes" if noise.chance(WEBINAR_ATTENDANCE) else "No"


def _ordered(system: str, record: dict[str, str]) -> list[str]:
    return [record[c] for c in CRM_SYSTEMS[system].columns]


def crm_header(system: str) -> tuple[str, ...]:
    return CRM_SYSTEMS[system].columns
