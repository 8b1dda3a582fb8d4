"""``config/activation.yaml``: destinations, channel kill switches, retries, email and content settings.

Validated with pydantic (unknown keys are errors); any problem raises ``ActivationConfigError``
naming the file and the key. ``MOS_ACTIVATION_CONFIG`` points at another file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mos_pipelines.configfile import read_mapping
from mos_pipelines.settings import PROJECT_ROOT

CONFIG_FILE = PROJECT_ROOT / "config" / "activation.yaml"
CHANNELS = ("email", "webhook", "google_customer_match", "meta_custom_audience", "slack")
ChannelName = Literal["email", "webhook", "google_customer_match", "meta_custom_audience", "slack"]
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RELATION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


class ActivationConfigError(ValueError):
    """The activation config is unreadable or invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelSwitch(_Strict):
    enabled: bool = True


class RetrySettings(_Strict):
    max_attempts: int = Field(5, ge=1, le=100)
    backoff_base_seconds: float = Field(1.0, ge=0)
    backoff_max_seconds: float = Field(60.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1)
    max_retry_after_seconds: float = Field(300.0, ge=0)


class SmtpSettings(_Strict):
    host_env: str = "MOS_SMTP_HOST"
    port_env: str = "MOS_SMTP_PORT"
    security_env: str = "MOS_SMTP_SECURITY"
    username_env: str = "MOS_SMTP_USERNAME"
    password_env: str = "MOS_SMTP_PASSWORD"
    journal_maildir_env: str = "MOS_SMTP_JOURNAL_MAILDIR"


class EmailSettings(_Strict):
    sink: Literal["outbox", "smtp", "auto"] = "outbox"
    from_address: str = "marketing@mos-pipelines.example"
    from_name: str = "MOS Pipelines"
    message_id_domain: str = "mos-pipelines.example"
    unsubscribe_mailto: str = "unsubscribe@mos-pipelines.example"
    unsubscribe_url: str | None = None
    smtp: SmtpSettings = SmtpSettings()

    @field_validator("unsubscribe_url")
    @classmethod
    def _token_placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{token}" not in value:
            raise ValueError("must contain {token} (the recipient's unsubscribe token)")
        return value


class CopyTemplate(_Strict):
    subject: str
    body: str


class ContentSettings(_Strict):
    renderer: Literal["static", "llm"] = "static"
    templates: dict[str, dict[str, CopyTemplate]] = Field(default_factory=dict)

    def template_for(self, campaign_id: str, variant_id: str) -> tuple[str, CopyTemplate]:
        """The copy of (campaign, variant): its own, else the campaign's default, else the global default."""
        for campaign, variant in ((campaign_id, variant_id), (campaign_id, "default"), ("default", "default")):
            template = self.templates.get(campaign, {}).get(variant)
            if template is not None:
                return f"{campaign}/{variant}", template
        raise ActivationConfigError(
            f"no email copy for campaign {campaign_id!r} variant {variant_id!r}: add content.templates."
            f"{campaign_id}.{variant_id} (or a default) to the activation config"
        )


class Destination(_Strict):
    channel: ChannelName
    sync_model: str
    record_key: str
    consent_purpose: str | None = None
    customer_column: str = "customer_id"
    url: str | None = None
    url_env: str | None = None
    rate_limit_per_second: float | None = Field(None, gt=0)
    batch_size: int | None = Field(None, ge=1)
    timeout_seconds: float = Field(10.0, gt=0)
    output_dir: str | None = None  # ad audience files; default $MOS_HOME/activation/audiences/<destination>

    @field_validator("sync_model")
    @classmethod
    def _relation(cls, value: str) -> str:
        if not RELATION.match(value):
            raise ValueError(f"expected schema.table, got {value!r}")
        return value

    @model_validator(mode="after")
    def _needs_url(self) -> "Destination":
        if self.channel in ("webhook", "slack") and not (self.url or self.url_env):
            raise ValueError(f"a {self.channel} destination needs `url` or `url_env`")
        return self

    def resolved_url(self) -> str | None:
        """The URL: the environment variable ``url_env`` when set, else ``url`` (None: not configured)."""
        if self.url_env and os.environ.get(self.url_env):
            return os.environ[self.url_env]
        return self.url


class ActivationConfig(_Strict):
    dry_run: bool = False
    channels: dict[ChannelName, ChannelSwitch] = Field(default_factory=dict)
    retry: RetrySettings = RetrySettings()
    email: EmailSettings = EmailSettings()
    content: ContentSettings = ContentSettings()
    destinations: dict[str, Destination] = Field(default_factory=dict)
    source: Path | None = None

    @field_validator("destinations")
    @classmethod
    def _names(cls, value: dict[str, Destination]) -> dict[str, Destination]:
        for name in value:
            if not NAME.match(name):
                raise ValueError(f"destination name {name!r}: use lower-case letters, digits and _")
        return value

    def enabled(self, channel: str) -> bool:
        """The channel's kill switch: False when the config turned the channel off."""
        switch = self.channels.get(channel)  # type: ignore[call-overload]
        return True if switch is None else switch.enabled

    def destination(self, name: str) -> Destination:
        try:
            return self.destinations[name]
        except KeyError:
            known = ", ".join(sorted(self.destinations)) or "none"
            raise ActivationConfigError(f"{self.source}: no destination {name!r} (known: {known})") from None


def config_path() -> Path:
    """``MOS_ACTIVATION_CONFIG`` if set, else the bundled ``config/activation.yaml``."""
    return Path(os.environ.get("MOS_ACTIVATION_CONFIG") or CONFIG_FILE)


def load_config(path: Path | None = None) -> ActivationConfig:
    """Read and validate the activation config."""
    path = path or config_path()
    data = read_mapping(path, "activation config", ActivationConfigError)
    try:
        return ActivationConfig(**data, source=path)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'top level'}: {error['msg']}" for error in exc.errors()
        )
        raise ActivationConfigError(f"{path}: {problems}") from exc
