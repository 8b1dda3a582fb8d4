"""Normalisation and SHA-256 of contact identifiers for ad-platform audiences.

Each platform publishes its own rules; both hash the normalised value with SHA-256 as lower-case hex.

- Google (Customer Match through the Data Manager API, "Format user data"): email lower-cased with all
  whitespace removed; for gmail.com / googlemail.com addresses the dots of the local part and any
  ``+suffix`` are removed too. Phone in E.164 (``+`` and the country code, digits only).
- Meta (Custom Audiences, "Hashing and normalizing data"; the same rules as the Conversions API's
  customer information parameters): email trimmed and lower-cased, nothing else removed. Phone as
  digits only, country code included, no ``+`` and no leading zeros.

Phone numbers are parsed with ``phonenumbers`` (national numbers need the customer's country). The
tests check these functions against the examples the platforms publish.
"""

from __future__ import annotations

import hashlib
import re

import phonenumbers

GOOGLE_MAIL_DOMAINS = {"gmail.com", "googlemail.com"}
_WHITESPACE = re.compile(r"\s+")


class IdentifierError(ValueError):
    """A value that cannot be normalised into the identifier a platform expects."""


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _split_address(email: str) -> tuple[str, str]:
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain:
        raise IdentifierError(f"not an email address: {email!r}")
    return local, domain


def google_email(email: str) -> str:
    """Google's normalised email: lower case, no whitespace, gmail dots and +suffix removed."""
    local, domain = _split_address(_WHITESPACE.sub("", email).lower())
    if domain in GOOGLE_MAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            raise IdentifierError(f"not an email address: {email!r}")
    return f"{local}@{domain}"


def meta_email(email: str) -> str:
    """Meta's normalised email: trimmed and lower-cased."""
    local, domain = _split_address(email.strip().lower())
    return f"{local}@{domain}"


def e164(phone: str, region: str | None = None) -> str:
    """The phone in E.164 (``+14155550100``); ``region`` (ISO-2) for numbers written nationally."""
    try:
        parsed = phonenumbers.parse(phone, (region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise IdentifierError(f"not a phone number: {phone!r} ({exc})") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise IdentifierError(f"not a possible phone number: {phone!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def google_phone(phone: str, region: str | None = None) -> str:
    """Google's normalised phone: E.164 with the plus sign."""
    return e164(phone, region)


def meta_phone(phone: str, region: str | None = None) -> str:
    """Meta's normalised phone: country code and number as digits, no plus, no leading zeros."""
    return e164(phone, region).lstrip("+").lstrip("0")


def hashed_identifiers(platform: str, email: str | None, phone: str | None, region: str | None) -> dict[str, str]:
    """{"email_sha256": ..., "phone_sha256": ...} for what is present and valid (empty when neither is)."""
    normalise = {"google": (google_email, google_phone), "meta": (meta_email, meta_phone)}[platform]
    found: dict[str, str] = {}
    if email:
        try:
            found["email_sha256"] = sha256_hex(normalise[0](email))
        except IdentifierError:
            pass
    if phone:
        try:
            found["phone_sha256"] = sha256_hex(normalise[1](phone, region))
        except IdentifierError:
            pass
    return found


def recipient_hash(kind: str, value: str | None) -> str | None:
    """The hashed recipient of the audit table: SHA-256 of ``kind:normalised value`` (never the raw value)."""
    if not value:
        return None
    return sha256_hex(f"{kind}:{value.strip().lower()}")
