"""How source systems distort a person's identifiers: typos, case, whitespace, nicknames, accents,
swapped names, missing fields, gmail dots and tags, phone formats and junk placeholders."""

from __future__ import annotations

import numpy as np

from mos_pipelines.simulation.names import JUNK_EMAILS, JUNK_PHONES, NICKNAMES, ascii_fold
from mos_pipelines.simulation.phones import PHONE_STYLES, PhoneFormats, write_phone
from mos_pipelines.simulation.scenario import IdentityNoise

LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")
PLUS_TAGS = ("news", "crm", "work", "promo", "2026")


class IdentityNoiser:
    """Applies the scenario's identity-noise rates, drawing from one random generator."""

    BLOCK = 8192

    def __init__(self, rates: IdentityNoise, generator: np.random.Generator) -> None:
        self.rates = rates
        self._generator = generator
        self._block = generator.random(self.BLOCK)
        self._pos = 0

    def uniform(self) -> float:
        """The next uniform draw in [0, 1) (buffered: per-call draws from numpy are slow)."""
        if self._pos == self.BLOCK:
            self._block = self._generator.random(self.BLOCK)
            self._pos = 0
        value = self._block[self._pos]
        self._pos += 1
        return float(value)

    def chance(self, rate: float) -> bool:
        return self.uniform() < rate

    def choose(self, options: tuple[str, ...]) -> str:
        return options[int(self.uniform() * len(options))]

    # -- primitives ------------------------------------------------------------------------

    def typo(self, text: str) -> str:
        """One edit: substitute, delete, insert or transpose a character."""
        if len(text) < 2:
            return text
        pos = int(self.uniform() * len(text))
        letter = self.choose(LETTERS)
        kind = int(self.uniform() * 4)
        if kind == 0:
            return text[:pos] + letter + text[pos + 1 :]
        if kind == 1:
            return text[:pos] + text[pos + 1 :]
        if kind == 2:
            return text[:pos] + letter + text[pos:]
        pos = min(pos, len(text) - 2)
        return text[:pos] + text[pos + 1] + text[pos] + text[pos + 2 :]

    def recase(self, text: str) -> str:
        return text.upper() if self.chance(0.5) else text.lower()

    def pad(self, text: str) -> str:
        """Leading, trailing or doubled inner whitespace."""
        kind = int(self.uniform() * 3)
        if kind == 0:
            return " " + text
        if kind == 1:
            return text + " "
        return text.replace(" ", "  ", 1) if " " in text else text + "  "

    def noisy_text(self, text: str, typo: bool = True) -> str:
        r = self.rates
        if typo and self.chance(r.typo_rate):
            text = self.typo(text)
        if self.chance(r.case_rate):
            text = self.recase(text)
        if self.chance(r.whitespace_rate):
            text = self.pad(text)
        return text

    def missing(self, value: str) -> str:
        """The value, or empty at the scenario's missing-field rate."""
        return "" if self.chance(self.rates.missing_field_rate) else value

    # -- fields ----------------------------------------------------------------------------

    def names(self, first: str, last: str) -> tuple[str, str]:
        """First and last name as a system holds them (possibly swapped or missing)."""
        r = self.rates
        if first in NICKNAMES and self.chance(r.nickname_rate):
            first = NICKNAMES[first]
        if self.chance(r.accent_strip_rate):
            first, last = ascii_fold(first), ascii_fold(last)
        first, last = self.noisy_text(first), self.noisy_text(last)
        if self.chance(r.swap_names_rate):
            first, last = last, first
        return self.missing(first), self.missing(last)

    def email(self, work: str, personal: str) -> str:
        """The address a system holds: work or personal, possibly mistyped, tagged or a placeholder."""
        r = self.rates
        if self.chance(r.junk_identifier_rate):
            return self.choose(JUNK_EMAILS)
        address = personal if personal and self.chance(0.3) else work
        local, _, domain = address.partition("@")
        if domain == "gmail.com" and self.chance(r.gmail_variant_rate):
            if self.chance(0.5) and len(local) > 1:  # gmail ignores dots in the local part
                pos = 1 + int(self.uniform() * (len(local) - 1))
                if "." not in (local[pos - 1], local[pos]):
                    local = local[:pos] + "." + local[pos:]
            else:
                local = f"{local}+{self.choose(PLUS_TAGS)}"
        if self.chance(r.typo_rate):
            local = self.typo(local)
        address = f"{local}@{domain}"
        if self.chance(r.case_rate):
            address = address.upper() if self.chance(0.3) else address[:1].upper() + address[1:]
        if self.chance(r.whitespace_rate):
            address = address + " " if self.chance(0.5) else " " + address
        return self.missing(address)

    def phone(self, phone: PhoneFormats) -> str:
        if self.chance(self.rates.junk_identifier_rate):
            return self.choose(JUNK_PHONES)
        return self.missing(write_phone(phone, self.choose(PHONE_STYLES)))

    def company(self, name: str, legal_suffixes: tuple[str, ...]) -> str:
        for suffix in legal_suffixes:
            if name.endswith(" " + suffix) and self.chance(0.3):
                name = name[: -len(suffix) - 1]
        return self.missing(self.noisy_text(name))

    def place(self, text: str) -> str:
        """A city or postcode: accents, case and spacing vary."""
        if self.chance(self.rates.accent_strip_rate):
            text = ascii_fold(text)
        if self.chance(self.rates.case_rate):
            text = self.recase(text)
        if self.chance(self.rates.whitespace_rate):
            text = text.replace(" ", "")
        return self.missing(text)
