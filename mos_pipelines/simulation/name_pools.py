"""Weighted first- and last-name distributions per country, built from Faker's per-locale name lists.

A real population has a few very common names and a long tail of rare ones; how many people share their full
name with someone (namesakes) follows from that shape, and an identity matcher lives or dies by it. Each
country's names are a mixture:

- its locales' lists from Faker (``faker.providers.person.<locale>``), weighted by the frequencies Faker ships
  where it has them (en_US from US census and SSA counts, en_NZ from New Zealand's registers, en_GB surnames);
  a list without frequencies gets the same rank-frequency curve as the US lists (most common first: the
  locale's popular names from ``names.POPULAR_*``, then Faker's order where it lists by popularity, otherwise a
  fixed hash order, so that no alphabet letter is favoured);
- the rare tail: a share of people whose name is in none of their country's lists, drawn uniformly from the
  names of every Latin-script Faker locale (Faker's lists are each country's most common names only).

The two rare shares were calibrated on the namesake share (people sharing first + last name with someone else)
and the name frequencies of the public labelled person sets (FEBRL3/4, Splink's fake_1000 and historical_50k):
at 10k people about 2 % are namesakes (the public sets: 0.9-8.2 %), and the US surname head lies between the
census (Smith 0.83 % of people; Smith holds 2.17 % of Faker's top 1,000, so those cover about 38 % of people)
and the public sets (FEBRL's most common surname 2.7 %). Figures: benchmarks/identity/README.md, "Name pool".
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import unicodedata
from collections.abc import Iterable, Mapping

import numpy as np

from mos_pipelines.simulation.names import POPULAR_FIRST_NAMES, POPULAR_LAST_NAMES

# Share of people whose first / last name is outside their country's lists (drawn from the rare tail).
RARE_FIRST_NAME_SHARE = 0.10
RARE_LAST_NAME_SHARE = 0.20

# (locale, share) per country, for first names and for last names. "sg" is names.POPULAR_*["sg"] alone.
FIRST_NAME_SOURCES: dict[str, tuple[tuple[str, float], ...]] = {
    "US": (("en_US", 0.82), ("es_MX", 0.15), ("en_IN", 0.03)),
    "CA": (("en_US", 0.75), ("fr_CA", 0.25)),
    "GB": (("en_GB", 0.95), ("en_IN", 0.05)),
    "AU": (("en_NZ", 1.0),),
    "DE": (("de_DE", 1.0),),
    "FR": (("fr_FR", 1.0),),
    "ES": (("es_ES", 1.0),),
    "NL": (("nl_NL", 1.0),),
    "IT": (("it_IT", 1.0),),
    "SG": (("sg", 0.45), ("en_GB", 0.25), ("zh_CN", 0.15), ("en_IN", 0.15)),
    "IN": (("en_IN", 1.0),),
    "BR": (("pt_BR", 1.0),),
    "MX": (("es_MX", 1.0),),
}
LAST_NAME_SOURCES: dict[str, tuple[tuple[str, float], ...]] = {
    **FIRST_NAME_SOURCES,
    "SG": (("sg", 0.75), ("zh_CN", 0.1), ("en_IN", 0.15)),
}

# Faker lists (without frequencies) that are already in order of popularity.
_ORDERED_BY_POPULARITY = {("en_GB", "first"), ("fr_FR", "last"), ("fr_CA", "last")}

# Latin-script locales whose names make up the rare tail.
RARE_TAIL_LOCALES = (
    "cs_CZ",
    "da_DK",
    "de_AT",
    "de_CH",
    "de_DE",
    "en_GB",
    "en_IE",
    "en_IN",
    "en_KE",
    "en_NZ",
    "en_PK",
    "en_US",
    "es_AR",
    "es_CL",
    "es_CO",
    "es_ES",
    "es_MX",
    "et_EE",
    "fi_FI",
    "fr_CA",
    "fr_FR",
    "ga_IE",
    "hr_HR",
    "hu_HU",
    "id_ID",
    "it_IT",
    "lt_LT",
    "lv_LV",
    "nl_BE",
    "nl_NL",
    "no_NO",
    "pt_BR",
    "pt_PT",
    "ro_RO",
    "sk_SK",
    "sl_SI",
    "sv_SE",
    "tr_TR",
)


def is_plain_name(name: str) -> bool:
    """Latin letters with single inner spaces, hyphens or apostrophes: no initials, dots or other scripts."""
    if len(name) < 2 or name != name.strip() or "  " in name:
        return False
    return all(ch in " -'" or (ch.isalpha() and "LATIN" in unicodedata.name(ch, "")) for ch in name)


def _provider_attribute(locale: str, attribute: str) -> object:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    for cls in provider.__mro__:  # the class attribute itself (some locales compute names in properties)
        if attribute in cls.__dict__:
            return cls.__dict__[attribute]
    return ()


def _faker_names(locale: str, attribute: str) -> dict[str, float] | list[str]:
    """A Faker list as {name: frequency} when Faker weighs it, else as a list in Faker's order."""
    if locale == "zh_CN":
        attribute = attribute.replace("_names", "_romanized_names")
    value = _provider_attribute(locale, attribute)
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items() if is_plain_name(str(k))}
    if isinstance(value, (tuple, list)):
        return list(dict.fromkeys(str(v) for v in value if is_plain_name(str(v))))
    return []


def _hash_order(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda n: hashlib.blake2b(n.encode(), digest_size=8).digest())


def _us_frequencies(attribute: str) -> np.ndarray:
    found = _faker_names("en_US", attribute)
    if not isinstance(found, dict):
        raise TypeError(f"Faker's en_US {attribute} carry no frequencies (a Faker version without them?)")
    weights = np.asarray(list(found.values()))
    return weights / weights.sum()


@functools.cache
def _rank_curve(kind: str) -> np.ndarray:
    """Frequencies by rank (most common first, sum 1) of the US lists: the shape lent to unweighted lists."""
    if kind == "first":  # men's and women's lists weigh half each
        weights = np.concatenate([_us_frequencies("first_names_male"), _us_frequencies("first_names_female")])
    else:
        weights = _us_frequencies("last_names")
    curve = np.sort(weights)[::-1]
    return curve / curve.sum()


def _ranked_weights(n: int, kind: str) -> np.ndarray:
    curve = _rank_curve(kind)
    if n <= len(curve):
        weights = curve[:n].copy()
    else:  # past the curve's end, frequency falls as 1 / rank
        ranks = np.arange(len(curve) + 1, n + 1)
        weights = np.concatenate([curve, curve[-1] * len(curve) / ranks])
    return weights / weights.sum()


def locale_distribution(locale: str, kind: str) -> dict[str, float]:
    """One locale's names (first or last) with their frequencies, summing to 1."""
    popular = (POPULAR_FIRST_NAMES if kind == "first" else POPULAR_LAST_NAMES).get(locale, ())
    if locale == "sg":
        ordered = list(popular)
    else:
        attributes = ("first_names_male", "first_names_female") if kind == "first" else ("last_names",)
        found = [_faker_names(locale, a) for a in attributes]
        if kind == "first" and not any(found):  # one list for all (zh_CN's romanised names)
            found = [_faker_names(locale, "first_names")]
        if all(isinstance(f, dict) for f in found) and all(f for f in found):
            out: dict[str, float] = {}
            for f in found:  # men's and women's lists weigh half each
                assert isinstance(f, dict)
                total = sum(f.values())
                for name, weight in f.items():
                    out[name] = out.get(name, 0.0) + weight / total / len(found)
            return out
        listed = [n for f in found for n in f]  # men's and women's names interleaved by rank
        if len(found) == 2:
            men, women = (list(f) for f in found)
            listed = [n for pair in zip(men, women) for n in pair] + men[len(women) :] + women[len(men) :]
        listed = list(dict.fromkeys(listed))
        if (locale, kind) not in _ORDERED_BY_POPULARITY:
            listed = _hash_order(listed)
        ordered = list(dict.fromkeys([*popular, *listed]))
    weights = _ranked_weights(len(ordered), kind)
    return dict(zip(ordered, weights.tolist()))


@functools.cache
def _rare_tail(kind: str) -> tuple[str, ...]:
    attributes = ("first_names", "first_names_male", "first_names_female") if kind == "first" else ("last_names",)
    names: set[str] = set()
    for locale in RARE_TAIL_LOCALES:
        for attribute in attributes:
            names.update(_faker_names(locale, attribute))
    return tuple(sorted(names))


@functools.cache
def name_distribution(country: str, kind: str) -> tuple[tuple[str, ...], np.ndarray]:
    """(names, cumulative probabilities) of a country's first (``kind="first"``) or last names."""
    sources = (FIRST_NAME_SOURCES if kind == "first" else LAST_NAME_SOURCES)[country]
    rare_share = RARE_FIRST_NAME_SHARE if kind == "first" else RARE_LAST_NAME_SHARE
    weights: dict[str, float] = {}
    for locale, share in sources:
        for name, weight in locale_distribution(locale, kind).items():
            weights[name] = weights.get(name, 0.0) + (1 - rare_share) * share * weight
    tail = _rare_tail(kind)
    for name in tail:
        weights[name] = weights.get(name, 0.0) + rare_share / len(tail)
    names = tuple(weights)
    cumulative = np.cumsum(np.asarray([weights[n] for n in names]))
    return names, cumulative / cumulative[-1]


def draw_names(country: str, kind: str, uniforms: np.ndarray) -> list[str]:
    """One name per uniform draw in [0, 1) (inverse CDF: the same draws give the same names)."""
    names, cumulative = name_distribution(country, kind)
    idx = np.minimum(np.searchsorted(cumulative, uniforms, side="right"), len(names) - 1)
    return [names[i] for i in idx.tolist()]
