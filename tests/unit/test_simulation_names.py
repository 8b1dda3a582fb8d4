"""The simulator's name draw: deterministic, heavy-tailed, and about as many namesakes as real person data."""

from __future__ import annotations

import dataclasses
import datetime

import numpy as np
import pandas as pd
import pytest

from mos_pipelines.simulation.identity_noise import IdentityNoiser
from mos_pipelines.simulation.name_pools import (
    FIRST_NAME_SOURCES,
    LAST_NAME_SOURCES,
    draw_names,
    is_plain_name,
    locale_distribution,
    name_distribution,
)
from mos_pipelines.simulation.names import NICKNAMES
from mos_pipelines.simulation.population import build_population
from mos_pipelines.simulation.scenario import DEFAULT_SCENARIO, load_scenario
from mos_pipelines.simulation.streams import rng

START = datetime.date(2026, 1, 1)


@pytest.fixture(scope="module")
def people_10k() -> pd.DataFrame:
    return build_population(11, 10_000, load_scenario(DEFAULT_SCENARIO), START).people


def _namesake_share(people: pd.DataFrame) -> float:
    full = people["first_name"].str.lower() + "|" + people["last_name"].str.lower()
    return float((full.map(full.value_counts()) > 1).mean())


def test_the_same_seed_draws_the_same_names_and_another_seed_others(people_10k: pd.DataFrame) -> None:
    scenario = load_scenario(DEFAULT_SCENARIO)
    again = build_population(11, 10_000, scenario, START).people
    assert again["first_name"].tolist() == people_10k["first_name"].tolist()
    assert again["last_name"].tolist() == people_10k["last_name"].tolist()
    other = build_population(12, 10_000, scenario, START).people
    assert (other["last_name"] != people_10k["last_name"]).mean() > 0.9


def test_names_are_an_inverse_cdf_of_the_uniform_draws() -> None:
    u = rng(3, 2).random(500)
    assert draw_names("DE", "last", u) == draw_names("DE", "last", u.copy())
    names, cumulative = name_distribution("DE", "last")
    assert np.all(np.diff(cumulative) >= 0) and cumulative[-1] == pytest.approx(1.0)
    assert draw_names("DE", "last", np.array([0.0, 0.999999]))[0] == names[0]
    assert all(is_plain_name(n) for n in names)  # no initials ("Hans D."), dots or other scripts


def test_namesakes_at_10k_people_are_within_what_public_person_data_shows(people_10k: pd.DataFrame) -> None:
    # The public labelled person sets have 0.9-8.2 % namesakes (benchmarks/identity/README.md, "Name pool");
    # the old 40-name lists gave 86 % at 10k people.
    share = _namesake_share(people_10k)
    assert 0.009 <= share <= 0.082
    # more people, more namesakes: the first 2,000 of the same population share names less often
    assert _namesake_share(people_10k.iloc[:2000]) < share


def test_name_frequencies_are_heavy_tailed(people_10k: pd.DataFrame) -> None:
    us = people_10k[people_10k["country"] == "US"]
    counts = us["last_name"].value_counts()
    assert counts.index[0] == "Smith"  # real frequencies: the census's most common surname leads
    top10 = counts.iloc[:10].sum() / len(us)
    assert 0.04 <= top10 <= 0.20  # US census about 5 %, FEBRL 15 %
    assert (counts == 1).sum() / len(us) > 0.2  # and a long tail of names nobody else here has


def test_common_first_names_still_get_nicknames(people_10k: pd.DataFrame) -> None:
    us = people_10k[people_10k["country"] == "US"]
    assert us["first_name"].isin(list(NICKNAMES)).mean() > 0.2
    rates = load_scenario(DEFAULT_SCENARIO).identity_noise  # only the nickname (and case, space) left on
    noiser = IdentityNoiser(dataclasses.replace(rates, typo_rate=0, swap_names_rate=0, missing_field_rate=0), rng(5, 8))
    rate = rates.nickname_rate
    firsts = [noiser.names("Robert", "Smith")[0] for _ in range(4000)]
    assert np.mean([f.strip().lower() == "bob" for f in firsts]) == pytest.approx(rate, abs=0.04)


def test_every_country_and_every_source_has_names() -> None:
    for kind, sources in (("first", FIRST_NAME_SOURCES), ("last", LAST_NAME_SOURCES)):
        for country, locales in sources.items():
            names, cumulative = name_distribution(country, kind)
            assert len(names) > 1000 and len(names) == len(cumulative)
            for locale, _ in locales:
                assert len(locale_distribution(locale, kind)) >= 10, (country, kind, locale)
