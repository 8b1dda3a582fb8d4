"""Phone numbers: unique, valid for each person's country (checked with ``phonenumbers``), and the
many ways people write them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType

RANDOM_DIGITS = 6  # trailing digits drawn at random after a valid example prefix
MAX_ROUNDS = 50


@dataclass(frozen=True)
class PhoneFormats:
    """One number in the three formats ``phonenumbers`` gives; other styles derive from these."""

    e164: str  # +4915123456789
    national: str  # 01512 3456789
    international: str  # +49 1512 3456789


def _templates(country: str) -> list[tuple[int, int]]:
    """(country calling code, example national number) of the mobile and fixed-line examples."""
    found: list[tuple[int, int]] = []
    for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
        example = phonenumbers.example_number_for_type(country, kind)
        if example is None or example.italian_leading_zero:
            continue
        key = (example.country_code, example.national_number)
        if key not in found:
            found.append(key)
    if not found:
        raise ValueError(f"phonenumbers has no example number for {country}")
    return found


def generate_phone_numbers(countries: np.ndarray, rng: np.random.Generator) -> list[PhoneFormats]:
    """A distinct valid number for each entry of ``countries`` (ISO-2 codes), in that order."""
    n = len(countries)
    calling_code = np.zeros(n, dtype=np.int64)
    national = np.zeros(n, dtype=np.int64)
    base = np.zeros(n, dtype=np.int64)
    span = np.zeros(n, dtype=np.int64)
    for country in sorted(set(countries.tolist())):
        idx = np.flatnonzero(countries == country)
        templates = _templates(country)
        pick = rng.integers(0, len(templates), size=len(idx))
        for t, (code, example) in enumerate(templates):
            rows = idx[pick == t]
            digits = min(RANDOM_DIGITS, len(str(example)) - 3)
            calling_code[rows] = code
            span[rows] = 10**digits
            base[rows] = example // 10**digits * 10**digits
    todo = np.arange(n)
    for _ in range(MAX_ROUNDS):
        national[todo] = base[todo] + rng.integers(0, span[todo])
        bad = [
            i
            for i in todo.tolist()
            if not phonenumbers.is_valid_number(
                PhoneNumber(country_code=int(calling_code[i]), national_number=int(national[i]))
            )
        ]
        key = calling_code * 10**12 + national
        _, first = np.unique(key, return_index=True)
        duplicate = np.ones(n, dtype=bool)
        duplicate[first] = False
        todo = np.union1d(np.asarray(bad, dtype=np.int64), np.flatnonzero(duplicate))
        if len(todo) == 0:
            break
    else:
        raise RuntimeError(f"could not draw {n} distinct valid phone numbers; too many people per country")
    return _format_all(calling_code, national, span)


def _formats(code: int, number: int) -> PhoneFormats:
    parsed = PhoneNumber(country_code=code, national_number=number)
    return PhoneFormats(
        e164=phonenumbers.format_number(parsed, PhoneNumberFormat.E164),
        national=phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL),
        international=phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL),
    )


def _pattern(formatted: str, digits: int) -> str:
    """A str.format pattern of a formatted number with its last ``digits`` digits as {0}..{n}."""
    out, k = [], digits
    for ch in reversed(formatted.replace("{", "{{").replace("}", "}}")):
        if ch.isdigit() and k > 0:
            k -= 1
            out.append("{%d}" % k)
        else:
            out.append(ch)
    return "".join(reversed(out))


def _format_all(calling_code: np.ndarray, national: np.ndarray, span: np.ndarray) -> list[PhoneFormats]:
    """Format every number. Numbers that share all but their random trailing digits share the
    formatting rule, so ``phonenumbers`` formats one per prefix and the rest are filled in; a sample
    of each prefix is checked against ``phonenumbers`` and a prefix that disagrees is formatted in full."""
    digits = np.log10(span).round().astype(int)
    prefix = national // span
    out: list[PhoneFormats | None] = [None] * len(national)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, key in enumerate(zip(calling_code.tolist(), prefix.tolist(), digits.tolist())):
        groups.setdefault(key, []).append(i)
    for (code, _, k), members in groups.items():
        template = _formats(code, int(national[members[0]]))
        patterns = [_pattern(f, k) for f in (template.e164, template.national, template.international)]
        suffixes = [f"{int(national[i]) % 10**k:0{k}d}" for i in members]
        filled = [PhoneFormats(*(p.format(*s) for p in patterns)) for s in suffixes]
        sample = members[:: max(1, len(members) // 20)]
        if all(filled[members.index(i)] == _formats(code, int(national[i])) for i in sample):
            for i, f in zip(members, filled):
                out[i] = f
        else:
            for i in members:
                out[i] = _formats(code, int(national[i]))
    return out  # type: ignore[return-value]


PHONE_STYLES = ("e164", "international", "national", "dots", "dashes", "parentheses", "digits", "double_zero")


def write_phone(phone: PhoneFormats, style: str) -> str:
    """The number as a person or a CRM form might have written it."""
    digits_national = "".join(ch for ch in phone.national if ch.isdigit())
    code, _, rest = phone.international.partition(" ")
    if style == "e164":
        return phone.e164
    if style == "international":
        return phone.international
    if style == "national":
        return phone.national
    if style == "dots":
        return ".".join(part for part in phone.international.replace("-", " ").split(" "))
    if style == "dashes":
        return "-".join(part for part in phone.national.replace("(", "").replace(")", "").split(" ") if part)
    if style == "parentheses":
        return f"({code}) {rest}"
    if style == "digits":
        return digits_national
    if style == "double_zero":
        return "00" + phone.international[1:]
    raise ValueError(f"unknown phone style {style!r}")
