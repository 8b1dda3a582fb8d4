"""Every environment variable MOS Pipelines reads (``MOS_*``), in one table: its name, what it does, and whether
its value is a secret (``mos config show`` prints ``(set)`` instead). The SMTP and webhook variables are named in
``config/activation.yaml`` (``email.smtp.*_env``, ``destinations.*.url_env``): the table lists the names
configured there."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mos_pipelines.configuration.registry import DOMAINS, load_activation


@dataclass(frozen=True)
class Variable:
    name: str
    what: str
    secret: bool = False

    def shown(self) -> str:
        value = os.environ.get(self.name)
        if value is None or value == "":
            return "(not set)"
        return "(set)" if self.secret else value


def variables() -> list[Variable]:
    """The variables, in the order of the README's table."""
    out = [
        Variable(
            "MOS_HOME",
            "the folder of everything MOS writes: landing, warehouse, truth, reports, Dagster (default ./.mos)",
        )
    ]
    out += [Variable(d.env, f"an override file merged over config/{d.name}.yaml") for d in DOMAINS.values()]
    try:
        activation = load_activation()
    except Exception:  # an invalid activation file: list the shipped names; `mos config validate` says why
        activation = None
    smtp = activation.email.smtp if activation else None
    names = {
        "host_env": ("MOS_SMTP_HOST", "SMTP server of email deliveries (with email.sink smtp or auto)", False),
        "port_env": ("MOS_SMTP_PORT", "SMTP port (default 25, 465 with ssl)", False),
        "security_env": ("MOS_SMTP_SECURITY", "none (default), starttls or ssl", False),
        "username_env": ("MOS_SMTP_USERNAME", "SMTP login", False),
        "password_env": ("MOS_SMTP_PASSWORD", "SMTP password", True),
        "journal_maildir_env": (
            "MOS_SMTP_JOURNAL_MAILDIR",
            "a Maildir receiving a copy of every accepted message (reconciles sends in flight at a crash)",
            False,
        ),
    }
    for key, (default, what, secret) in names.items():
        out.append(Variable(getattr(smtp, key) if smtp else default, what, secret))
    if activation:
        for name, destination in activation.destinations.items():
            if destination.url_env:
                out.append(Variable(destination.url_env, f"URL of destination {name} (unset: dry run)", True))
    else:
        out += [
            Variable("MOS_CRM_WEBHOOK_URL", "URL of the CRM webhook (unset: dry run)", True),
            Variable("MOS_SLACK_WEBHOOK_URL", "Slack incoming webhook (unset: dry run)", True),
        ]
    out += [
        Variable(f"MOS_DUCKDB_{key}", f"DuckDB {key.lower()} for dbt's profile, set by mos from config/warehouse.yaml")
        for key in ("THREADS", "MEMORY_LIMIT", "TEMP_DIRECTORY")
    ]
    return out
