"""``config/access.yaml``: the users of the web app, the assistant, the MCP server and the CRM API, their roles and
what each role may do (read by ``mos_pipelines.access``). Tokens live in environment variables the users name."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from mos_pipelines.configuration.base import DomainSettings, Flag, Identifier, Section, SnakeName, replace, unique

RoleName = Literal["marketer", "analyst", "admin"]


class Permissions(Section):
    see_pii: Flag
    approve_copy: Flag
    feedback_for_others: Flag
    write_crm: Flag


class User(Section):
    id: SnakeName
    role: RoleName
    token_env: Identifier


class AccessSettings(DomainSettings):
    roles: dict[RoleName, Permissions]
    users: tuple[User, ...] = replace()

    @field_validator("users")
    @classmethod
    def _unique_users(cls, value: tuple[User, ...]) -> tuple[User, ...]:
        unique(value, "token_env", "a token variable")
        return unique(value, "id", "a user id")
