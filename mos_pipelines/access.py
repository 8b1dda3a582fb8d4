"""Who is asking, and what they may see and do: the one place the web app, the assistant, the MCP server and the
CRM API decide it.

Users, roles and permissions are in ``config/access.yaml``; each user's token is in the environment variable the
file names (never in a file of the project). ``authenticate`` turns a presented token into a ``Principal`` (or
``AccessDenied`` with 401); ``Principal.require`` raises ``AccessDenied`` with 403 for a missing permission.
``mask_email`` / ``mask_phone`` / ``mask_name`` are the masks every reader without ``see_pii`` gets.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from mos_pipelines.configuration import load_access
from mos_pipelines.configuration.access import AccessSettings, Permissions

Permission = Literal["see_pii", "approve_copy", "feedback_for_others", "write_crm"]


class AccessDenied(Exception):
    """A request that may not proceed: ``status`` 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Principal:
    """A signed-in user: their id (also their reader id for notifications), role and permissions."""

    id: str
    role: str
    permissions: Permissions

    def can(self, permission: Permission) -> bool:
        return bool(getattr(self.permissions, permission))

    def require(self, permission: Permission, doing: str) -> None:
        if not self.can(permission):
            raise AccessDenied(403, f"{self.id} ({self.role}) may not {doing}: the role lacks {permission}.")

    def may_give_feedback_for(self, reader: str) -> bool:
        return reader == self.id or self.can("feedback_for_others")


def principal(user_id: str, settings: AccessSettings | None = None) -> Principal:
    """The principal of a user of config/access.yaml by id (command-line use, where the shell is the credential)."""
    settings = settings or load_access()
    for user in settings.users:
        if user.id == user_id:
            return Principal(user.id, user.role, settings.roles[user.role])
    known = ", ".join(u.id for u in settings.users)
    raise AccessDenied(401, f"No user {user_id!r} in config/access.yaml (users: {known}).")


def authenticate(
    token: str | None, settings: AccessSettings | None = None, environ: Mapping[str, str] | None = None
) -> Principal:
    """The principal whose token this is (constant-time comparison against each user's variable)."""
    if not token:
        raise AccessDenied(401, "Sign in: send `Authorization: Bearer <token>` (tokens: config/access.yaml).")
    settings = settings or load_access()
    environ = os.environ if environ is None else environ
    found: Principal | None = None
    for user in settings.users:
        expected = environ.get(user.token_env, "")
        if expected and hmac.compare_digest(expected.encode(), token.encode()):
            found = Principal(user.id, user.role, settings.roles[user.role])
    if found is None:
        raise AccessDenied(401, "Unknown token (each user's is in the variable config/access.yaml names).")
    return found


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (None when absent or another scheme)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


_EMAIL = re.compile(r"([^@\s])[^@\s]*(@[^@\s]+)")


def mask_email(value: str | None) -> str | None:
    """``j***@example.com``: the first letter and the domain stay, so a reader can tell records apart."""
    return None if value is None else _EMAIL.sub(r"\1***\2", value)


def mask_phone(value: str | None) -> str | None:
    """Every digit but the last two masked."""
    if value is None:
        return None
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    keep = set(digits[-2:])
    return "".join("*" if ch.isdigit() and i not in keep else ch for i, ch in enumerate(value))


def mask_name(value: str | None) -> str | None:
    """Initials only: ``Ada Lovelace`` → ``A. L.``"""
    if value is None:
        return None
    return " ".join(f"{part[0]}." for part in value.split() if part) or None


PII_MASKS = {"email": mask_email, "phone": mask_phone, "name": mask_name}
