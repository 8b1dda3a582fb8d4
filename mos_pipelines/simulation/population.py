"""Accounts and the people in them: attributes, devices, contact details and the latent propensity.

The population depends only on the seed, the number of people and the scenario, never on the
number of days, so a longer run describes the same people.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mos_pipelines.simulation.geography import COUNTRIES, COUNTRY_INDEX, REGIONS, countries_in
from mos_pipelines.simulation.name_pools import draw_names
from mos_pipelines.simulation.names import (
    COMPANY_CORES,
    COMPANY_PREFIXES,
    COMPANY_TAILS,
    JOB_TITLES,
    PERSONAL_EMAIL_DOMAINS,
    PERSONAL_EMAIL_WEIGHTS,
    ascii_fold,
)
from mos_pipelines.simulation.phones import PhoneFormats, generate_phone_numbers
from mos_pipelines.simulation.scenario import RECENT_SIGNUP_DAYS, SEGMENT_ATTRIBUTES, Scenario
from mos_pipelines.simulation.streams import Stream, random_uuids, rng

PEOPLE_PER_ACCOUNT = 6
NEVER = 10**9  # day index of something that never happens

INDUSTRIES = ("saas", "retail", "finance", "healthcare", "manufacturing", "education", "media")
INDUSTRY_WEIGHTS = (0.25, 0.15, 0.15, 0.12, 0.13, 0.1, 0.1)
SIZE_BANDS = ("1-10", "11-50", "51-200", "201-500", "501-1000", "1000+")
SIZE_BAND_WEIGHTS = (0.30, 0.28, 0.20, 0.10, 0.06, 0.06)
PEOPLE_WEIGHT_BY_SIZE = (1.0, 2.0, 4.0, 7.0, 10.0, 14.0)  # how many of the people work at each size
PERSONAS = ("marketer", "engineer", "executive", "operations", "sales")
PERSONA_WEIGHTS = (0.30, 0.20, 0.12, 0.18, 0.20)
SENIORITIES = ("individual_contributor", "manager", "director", "vp", "c_level")
SENIORITY_WEIGHTS = (0.45, 0.30, 0.15, 0.07, 0.03)
EXECUTIVE_SENIORITY_WEIGHTS = (0.0, 0.0, 0.2, 0.3, 0.5)
DEVICE_COUNT_WEIGHTS = (0.35, 0.35, 0.20, 0.10)  # 1, 2, 3, 4 devices
ENGAGEMENT_SIGMA = 0.9  # log-normal spread of the per-person activity level (heavy tail)
SIGNUP_BEFORE_START_SHARE = 0.4  # of eventual sign-ups, the share who signed up before day 0
SIGNUP_DAILY_HAZARD = 1 / 45  # after day 0, sign-ups arrive geometrically
PRIMARY_EMAIL_PATTERN_SHARE = 0.85  # first.last@ (the rest use flast@)

# The propensity model is logistic in these attributes (plus engagement); its coefficients are the
# scenario's `propensity` section: the truth the lookalike model should find.
PROPENSITY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "industry": INDUSTRIES,
    "size_band": SIZE_BANDS,
    "persona": PERSONAS,
    "seniority": SENIORITIES,
    "region": REGIONS,
}


@dataclass
class Population:
    """Accounts, people and devices, plus per-person arrays for the daily simulation."""

    accounts: pd.DataFrame
    people: pd.DataFrame
    devices: pd.DataFrame  # person_idx, anonymous_id, ip, weight
    phones: list[PhoneFormats]
    region_idx: np.ndarray
    propensity: np.ndarray
    engagement: np.ndarray
    signup_day: np.ndarray  # NEVER for people who never sign up; negative = before day 0
    device_start: np.ndarray  # first row of the person's devices in ``devices``
    device_count: np.ndarray

    @property
    def size(self) -> int:
        return len(self.people)

    @property
    def propensity_factor(self) -> np.ndarray:
        """Propensity relative to the population mean (mean 1)."""
        return self.propensity / self.propensity.mean()


def segment_attributes(population: Population, person: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per person (all, or the ``person`` indices): the attributes a segment effect selects on."""
    people = population.people
    idx = np.arange(population.size) if person is None else np.asarray(person, dtype=np.int64)
    signup = population.signup_day[idx]
    recency = np.where(signup >= 0, "none", np.where(signup >= -RECENT_SIGNUP_DAYS, "recent", "established"))
    out = {a: people[a].to_numpy()[idx] for a in SEGMENT_ATTRIBUTES if a != "signup_recency"}
    out["signup_recency"] = recency.astype(object)
    return out


def propensity_model(scenario: Scenario) -> dict[str, object]:
    """The coefficients as written to truth/propensity_model.json."""
    model = scenario.propensity
    return {
        "link": "logistic",
        "formula": "propensity = 1 / (1 + exp(-(intercept + sum of the coefficients of the person's "
        "industry, size_band, persona, seniority and region + log_engagement * ln(engagement) "
        "+ noise))), noise ~ Normal(0, noise_sd)",
        "intercept": model.intercept,
        "coefficients": {**model.coefficients, "log_engagement": model.log_engagement},
        "noise_sd": model.noise_sd,
    }


def _pick(generator: np.random.Generator, options: tuple[str, ...], weights: tuple[float, ...], n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return np.asarray(options, dtype=object)[generator.choice(len(options), size=n, p=p / p.sum())]


def _local_part(text: str) -> str:
    return "".join(ch for ch in ascii_fold(text).lower() if ch.isalnum())


def _unique(candidates: list[str]) -> list[str]:
    """Make addresses unique by numbering repeats: ana.silva@x, ana.silva2@x, ..."""
    seen: dict[str, int] = {}
    out = []
    for address in candidates:
        count = seen.get(address, 0) + 1
        seen[address] = count
        if count > 1:
            local, _, domain = address.partition("@")
            address = f"{local}{count}@{domain}"
            while address in seen:  # the numbered form may itself exist already
                count += 1
                address = f"{local}{count}@{domain}"
            seen[address] = 1
        out.append(address)
    return out


def build_accounts(seed: int, n_people: int, scenario: Scenario) -> pd.DataFrame:
    generator = rng(seed, Stream.ACCOUNTS)
    n = max(1, n_people // PEOPLE_PER_ACCOUNT)
    region = _pick(generator, REGIONS, tuple(scenario.regions[r] for r in REGIONS), n)
    country = np.empty(n, dtype=object)
    for r in REGIONS:
        idx = np.flatnonzero(region == r)
        options = countries_in(r)
        country[idx] = _pick(generator, tuple(c.code for c in options), tuple(c.weight for c in options), len(idx))
    industry = _pick(generator, INDUSTRIES, INDUSTRY_WEIGHTS, n)
    size_band = _pick(generator, SIZE_BANDS, SIZE_BAND_WEIGHTS, n)
    prefix = generator.integers(0, len(COMPANY_PREFIXES), n)
    core = generator.integers(0, len(COMPANY_CORES), n)
    tail = generator.integers(0, 3, n)
    has_suffix = generator.random(n) < 0.7
    suffix_pick = generator.integers(0, 2, n)
    city_pick = generator.random(n)
    postcode_pick = generator.random(n)
    names, domains, cities, postcodes = [], [], [], []
    taken: set[str] = set()
    for i in range(n):
        c = COUNTRIES[COUNTRY_INDEX[country[i]]]
        stem = COMPANY_PREFIXES[prefix[i]] + COMPANY_CORES[core[i]]
        tail_word = COMPANY_TAILS[industry[i]][tail[i]]
        name = f"{stem} {tail_word}"
        if has_suffix[i]:
            name += " " + c.legal_suffixes[suffix_pick[i] % len(c.legal_suffixes)]
        names.append(name)
        domain = f"{stem.lower()}.{c.tld}"
        if domain in taken:
            domain = f"{stem.lower()}{tail_word.lower()}.{c.tld}"
        k = 2
        while domain in taken:
            domain = f"{stem.lower()}{k}.{c.tld}"
            k += 1
        taken.add(domain)
        domains.append(domain)
        city, codes = c.cities[int(city_pick[i] * len(c.cities))]
        cities.append(city)
        postcodes.append(codes[int(postcode_pick[i] * len(codes))])
    return pd.DataFrame(
        {
            "account_id": [f"A{i + 1:06d}" for i in range(n)],
            "name": names,
            "domain": domains,
            "industry": industry,
            "size_band": size_band,
            "country": country,
            "region": region,
            "city": cities,
            "postcode": postcodes,
        }
    )


def build_population(seed: int, n_people: int, scenario: Scenario, start_date: datetime.date) -> Population:
    """The people of the world, their accounts, devices and contact details."""
    accounts = build_accounts(seed, n_people, scenario)
    generator = rng(seed, Stream.PEOPLE)
    n_accounts = len(accounts)
    size_idx = accounts["size_band"].map({b: i for i, b in enumerate(SIZE_BANDS)}).to_numpy()
    weight = np.asarray(PEOPLE_WEIGHT_BY_SIZE)[size_idx]
    extra = generator.choice(n_accounts, size=n_people - n_accounts, p=weight / weight.sum())
    account_idx = generator.permutation(np.concatenate([np.arange(n_accounts), extra]))
    acc = accounts.iloc[account_idx].reset_index(drop=True)
    country = acc["country"].to_numpy()

    first_names = np.empty(n_people, dtype=object)
    last_names = np.empty(n_people, dtype=object)
    first_pick = generator.random(n_people)
    last_pick = generator.random(n_people)
    for code in sorted(set(country.tolist())):
        idx = np.flatnonzero(country == code)
        first_names[idx] = draw_names(code, "first", first_pick[idx])
        last_names[idx] = draw_names(code, "last", last_pick[idx])

    persona = _pick(generator, PERSONAS, PERSONA_WEIGHTS, n_people)
    seniority = _pick(generator, SENIORITIES, SENIORITY_WEIGHTS, n_people)
    executives = np.flatnonzero(persona == "executive")
    seniority[executives] = _pick(generator, SENIORITIES, EXECUTIVE_SENIORITY_WEIGHTS, len(executives))
    seniority_idx = pd.Series(seniority).map({s: i for i, s in enumerate(SENIORITIES)}).to_numpy()
    job_title = [JOB_TITLES[p][s] for p, s in zip(persona, seniority_idx)]
    age_days = generator.integers(22 * 365, 65 * 365, n_people)
    birth_date = [(start_date - datetime.timedelta(days=int(d))).isoformat() for d in age_days]

    engagement = np.exp(ENGAGEMENT_SIGMA * generator.standard_normal(n_people) - ENGAGEMENT_SIGMA**2 / 2)
    region = acc["region"].to_numpy()
    model = scenario.propensity
    linear = model.intercept + model.log_engagement * np.log(engagement)
    features = {
        "industry": acc["industry"].to_numpy(),
        "size_band": acc["size_band"].to_numpy(),
        "persona": persona,
        "seniority": seniority,
        "region": region,
    }
    for feature, values in features.items():
        linear = linear + pd.Series(values).map(model.coefficients[feature]).to_numpy(dtype=float)
    linear = linear + model.noise_sd * generator.standard_normal(n_people)
    propensity = 1 / (1 + np.exp(-linear))

    signup_p = np.clip(scenario.behaviour.signup_share * propensity / propensity.mean(), 0, 0.95)
    signs_up = generator.random(n_people) < signup_p
    before = generator.random(n_people) < SIGNUP_BEFORE_START_SHARE
    signup_day = np.where(
        before, -generator.integers(1, 366, n_people), generator.geometric(SIGNUP_DAILY_HAZARD, n_people) - 1
    )
    signup_day = np.where(signs_up, signup_day, NEVER).astype(np.int64)
    user_codes = generator.choice(16**10, size=int(signs_up.sum()), replace=False)
    user_id = np.full(n_people, "", dtype=object)
    user_id[signs_up] = [f"u_{code:010x}" for code in user_codes.tolist()]

    domain = acc["domain"].to_numpy()
    first_local = [_local_part(f) for f in first_names]
    last_local = [_local_part(x) for x in last_names]
    pattern_first_last = generator.random(n_people) < PRIMARY_EMAIL_PATTERN_SHARE
    work_email = _unique(
        [
            f"{f}.{la}@{d}" if full else f"{f[:1]}{la}@{d}"
            for f, la, d, full in zip(first_local, last_local, domain, pattern_first_last)
        ]
    )
    has_personal = generator.random(n_people) < scenario.identity_noise.personal_email_rate
    provider = _pick(generator, PERSONAL_EMAIL_DOMAINS, PERSONAL_EMAIL_WEIGHTS, n_people)
    year = generator.integers(70, 100, n_people)
    personal_candidates = [
        f"{f}.{la}@{p}" if y % 2 else f"{f}{la}{y}@{p}" for f, la, p, y in zip(first_local, last_local, provider, year)
    ]
    personal_email = np.full(n_people, "", dtype=object)
    personal_email[has_personal] = _unique([a for a, h in zip(personal_candidates, has_personal) if h])
    # The address marketing knows them by: work, or the personal one for a third of those who have one.
    marketing_email = np.where(has_personal & (generator.random(n_people) < 1 / 3), personal_email, work_email)

    phones = generate_phone_numbers(country, rng(seed, Stream.PHONES))

    people = pd.DataFrame(
        {
            "person_id": [f"P{i + 1:06d}" for i in range(n_people)],
            "account_id": acc["account_id"].to_numpy(),
            "first_name": first_names,
            "last_name": last_names,
            "persona": persona,
            "seniority": seniority,
            "job_title": job_title,
            "company": acc["name"].to_numpy(),
            "industry": acc["industry"].to_numpy(),
            "size_band": acc["size_band"].to_numpy(),
            "country": country,
            "region": region,
            "city": acc["city"].to_numpy(),
            "postcode": acc["postcode"].to_numpy(),
            "locale": [COUNTRIES[COUNTRY_INDEX[c]].locale for c in country],
            "currency": [COUNTRIES[COUNTRY_INDEX[c]].currency for c in country],
            "birth_date": birth_date,
            "work_email": work_email,
            "personal_email": personal_email,
            "marketing_email": marketing_email,
            "phone_e164": [p.e164 for p in phones],
            "engagement": engagement,
            "propensity": propensity,
            "user_id": user_id,
            "signup_day": pd.Series(signup_day).where(signs_up).astype("Int64"),
        }
    )

    devices = _build_devices(seed, n_people)
    device_count = np.bincount(devices["person_idx"].to_numpy(), minlength=n_people)
    device_start = np.concatenate([[0], np.cumsum(device_count)[:-1]])
    people["n_devices"] = device_count
    return Population(
        accounts=accounts,
        people=people,
        devices=devices,
        phones=phones,
        region_idx=pd.Series(region).map({r: i for i, r in enumerate(REGIONS)}).to_numpy(dtype=np.int64),
        propensity=propensity,
        engagement=engagement,
        signup_day=signup_day,
        device_start=device_start,
        device_count=device_count,
    )


def _build_devices(seed: int, n_people: int) -> pd.DataFrame:
    """1-4 browsers/phones per person, each with a stable anonymous id and IP address."""
    generator = rng(seed, Stream.DEVICES)
    counts = generator.choice(4, size=n_people, p=DEVICE_COUNT_WEIGHTS) + 1
    person_idx = np.repeat(np.arange(n_people), counts)
    n = len(person_idx)
    position = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    octets = generator.integers(1, 255, size=(n, 4))
    octets[:, 0] = generator.choice(np.r_[11:100, 101:127, 128:169, 170:172, 173:192, 193:224], size=n)
    return pd.DataFrame(
        {
            "person_idx": person_idx,
            "anonymous_id": random_uuids(generator, n),
            "ip": [".".join(map(str, row)) for row in octets.tolist()],
            # the first device is the person's main one
            "weight": np.where(position == 0, 3.0, 1.0),
        }
    )
