"""Sessions and CSRF tokens of the web app (stdlib hmac; who a token belongs to is ``mos_pipelines.access``).

A user signs in once at /login with their token (or sends ``Authorization: Bearer`` on every request). The
session cookie holds ``user id . issued-at . HMAC-SHA256`` under the app's secret; it is HttpOnly and
SameSite=Strict and expires after ``max_age`` seconds. The cookie also carries a digest of the token it was
opened with, so changing a user's token ends their sessions. Each session has a CSRF token (an HMAC of the
cookie) that every form posts back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping

from mos_pipelines.access import AccessDenied, Principal, principal
from mos_pipelines.configuration.access import AccessSettings

COOKIE = "mos_session"


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Sessions:
    def __init__(
        self,
        secret: bytes,
        access: AccessSettings,
        max_age: int = 12 * 3600,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.secret = secret
        self.access = access
        self.max_age = max_age
        self.environ = os.environ if environ is None else environ

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest())

    def issue(self, who: Principal, token: str, now: float | None = None) -> str:
        payload = f"{who.id}.{int(now if now is not None else time.time())}.{_token_digest(token)}"
        return f"{payload}.{self._sign(payload)}"

    def verify(self, cookie: str | None, now: float | None = None) -> Principal:
        """The principal of a valid, unexpired session cookie; ``AccessDenied(401)`` otherwise."""
        if not cookie:
            raise AccessDenied(401, "Sign in at /login with your token (or send `Authorization: Bearer <token>`).")
        parts = cookie.split(".")
        if len(parts) != 4:
            raise AccessDenied(401, "The session cookie is malformed: sign in again at /login.")
        payload, signature = ".".join(parts[:3]), parts[3]
        if not hmac.compare_digest(self._sign(payload), signature):
            raise AccessDenied(401, "The session cookie's signature does not match: sign in again at /login.")
        user_id, issued, digest = parts[:3]
        now = now if now is not None else time.time()
        if not issued.isdigit() or now - int(issued) > self.max_age:
            raise AccessDenied(401, "The session has expired: sign in again at /login.")
        who = principal(user_id, self.access)
        user = next(u for u in self.access.users if u.id == who.id)
        current = self.environ.get(user.token_env, "")
        if not current or not hmac.compare_digest(_token_digest(current), digest):
            raise AccessDenied(401, "The token this session was opened with has changed: sign in again at /login.")
        return who

    def csrf(self, cookie: str) -> str:
        return self._sign("csrf:" + cookie)

    def check_csrf(self, cookie: str | None, presented: str | None) -> bool:
        return bool(cookie and presented) and hmac.compare_digest(self.csrf(cookie or ""), presented or "")
