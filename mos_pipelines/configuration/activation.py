"""``config/activation.yaml``: sync models, destinations, channel kill switches, retries, email and copy.

``sync_models`` says what each dbt sync model (``models/activation/``) selects and the consent purpose it is
filtered on; that purpose is declared once here and reaches the sync model (dbt var
``mos__activation_sync_models``), the delivery's send-time consent check and the quality gate's consent check.
Read by ``mos_pipelines.activation`` (deliveries, sensors) and ``mos_pipelines.quality`` (consent gate).
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from mos_pipelines.configuration.base import (
    Count,
    DomainSettings,
    Flag,
    Invalid,
    NonNegative,
    Positive,
    Relation,
    Section,
    Share,
    SnakeName,
    Text,
    Whole,
    replace,
)
from mos_pipelines.configuration.errors import ConfigError, display_path, phrased

CHANNELS = ("email", "webhook", "google_customer_match", "meta_custom_audience", "slack")
ChannelName = Literal["email", "webhook", "google_customer_match", "meta_custom_audience", "slack"]
SYNC_SCHEMA = "activation"
# The keys each shipped sync model reads (its SQL fails without them); another sync model may use any of them.
SYNC_MODEL_KEYS = {
    "sync_email__nurture": ("campaign_id", "lifecycle_stages"),
    "sync_crm__lifecycle_stages": ("lifecycle_stages",),
    "sync_ads__audience_members": ("lookalike_max_tier", "customer_stages"),
    "sync_slack__top_notifications": ("top_n",),
}


class SyncModel(Section):
    """What one sync model selects. ``consent_purpose``: the purpose whose granted consent every selected
    customer needs (null for a model that selects no customers, e.g. notifications)."""

    consent_purpose: Text | None
    campaign_id: Text | None = None  # the email campaign (its variants; its holdout share from config/experiments.yaml)
    lifecycle_stages: tuple[Text, ...] | None = None  # customers in these stages
    lookalike_max_tier: Whole | None = Field(None, ge=1, le=100)  # lookalike tiers up to this percent
    customer_stages: tuple[Text, ...] | None = None  # current customers, for exclusion lists
    top_n: Count | None = None  # the most severe open notifications


class ChannelSwitch(Section):
    enabled: Flag


class RetrySettings(Section):
    max_attempts: Whole = Field(ge=1, le=100)
    backoff_base_seconds: NonNegative
    backoff_max_seconds: NonNegative
    jitter: Share
    max_retry_after_seconds: NonNegative


class SmtpSettings(Section):
    """Names of the environment variables that hold the SMTP settings (never the values)."""

    host_env: Text
    port_env: Text
    security_env: Text
    username_env: Text
    password_env: Text
    journal_maildir_env: Text


class EmailSettings(Section):
    sink: Literal["outbox", "smtp", "auto"]
    from_address: Text
    from_name: Text
    message_id_domain: Text
    unsubscribe_mailto: Text
    unsubscribe_url: Text | None
    smtp: SmtpSettings

    @field_validator("unsubscribe_url")
    @classmethod
    def _token_placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{token}" not in value:
            raise ValueError("a URL containing {token} (the recipient's unsubscribe token)")
        return value


class CopyTemplate(Section):
    subject: Text
    body: Text


class ContentSettings(Section):
    renderer: Literal["static", "llm"]
    templates: dict[str, dict[str, CopyTemplate]] = replace()

    _file: str = PrivateAttr(default="config/activation.yaml")

    def template_for(self, campaign_id: str, variant_id: str) -> tuple[str, CopyTemplate]:
        """The copy of (campaign, variant): its own, else the campaign's default, else the global default."""
        for campaign, variant in ((campaign_id, variant_id), (campaign_id, "default"), ("default", "default")):
            template = self.templates.get(campaign, {}).get(variant)
            if template is not None:
                return f"{campaign}/{variant}", template
        raise ConfigError(
            self._file,
            f"content.templates.{campaign_id}.{variant_id}",
            f"the copy of campaign {campaign_id!r} variant {variant_id!r} (or content.templates.default.default)",
            phrased("no template"),
        )


class Destination(Section):
    channel: ChannelName
    sync_model: Relation  # activation.<a key of sync_models>
    record_key: Text
    customer_column: Text = "customer_id"
    url: Text | None = None
    url_env: Text | None = None
    rate_limit_per_second: Positive | None = None
    batch_size: Count | None = None
    timeout_seconds: Positive = 10.0
    output_dir: Text | None = None  # ad audience files; default $MOS_HOME/activation/audiences/<destination>

    _consent_purpose: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _needs_url(self) -> Destination:
        if self.channel in ("webhook", "slack") and not (self.url or self.url_env):
            raise Invalid(f"`url` or `url_env` (a {self.channel} destination posts to a URL)", ("url_env",))
        return self

    @property
    def consent_purpose(self) -> str | None:
        """The consent purpose of its sync model (``sync_models.<name>.consent_purpose``), checked at send time."""
        return self._consent_purpose

    @property
    def sync_model_name(self) -> str:
        return self.sync_model.split(".", 1)[1]

    def resolved_url(self) -> str | None:
        """The URL: the environment variable ``url_env`` when set, else ``url`` (None: not configured)."""
        if self.url_env and os.environ.get(self.url_env):
            return os.environ[self.url_env]
        return self.url


class ActivationSettings(DomainSettings):
    dry_run: Flag
    channels: dict[ChannelName, ChannelSwitch]
    retry: RetrySettings
    email: EmailSettings
    content: ContentSettings
    sync_models: dict[SnakeName, SyncModel]
    destinations: dict[SnakeName, Destination] = replace()

    @field_validator("sync_models")
    @classmethod
    def _sync_model_keys(cls, value: dict[str, SyncModel]) -> dict[str, SyncModel]:
        for name, keys in SYNC_MODEL_KEYS.items():
            for key in keys:
                if name in value and getattr(value[name], key) is None:
                    raise Invalid(f"a value: models/activation/{name}.sql reads it", (name, key))
        return value

    @model_validator(mode="after")
    def _destinations_read_declared_sync_models(self) -> ActivationSettings:
        for name, destination in self.destinations.items():
            schema, _, model = destination.sync_model.partition(".")
            if schema != SYNC_SCHEMA or model not in self.sync_models:
                known = ", ".join(f"{SYNC_SCHEMA}.{m}" for m in self.sync_models) or "none"
                raise Invalid(
                    f"a sync model declared under sync_models ({known})", ("destinations", name, "sync_model")
                )
            destination._consent_purpose = self.sync_models[model].consent_purpose
        return self

    def loaded(self) -> None:
        if self.source is not None:
            self.content._file = display_path(self.source)

    def enabled(self, channel: str) -> bool:
        """The channel's kill switch: False when the config turned the channel off."""
        switch = self.channels.get(channel)  # type: ignore[call-overload]
        return True if switch is None else switch.enabled

    def destination(self, name: str) -> Destination:
        try:
            return self.destinations[name]
        except KeyError:
            known = ", ".join(sorted(self.destinations)) or "none"
            raise ConfigError(
                self.source or "config/activation.yaml",
                "destinations",
                f"a destination named {name!r} (known: {known})",
                phrased("no such destination"),
            ) from None

    def consent_targets(self) -> tuple[tuple[str, str], ...]:
        """(``activation.<sync model>``, purpose) of every sync model that selects customers for a purpose."""
        return tuple(
            (f"{SYNC_SCHEMA}.{name}", model.consent_purpose)
            for name, model in self.sync_models.items()
            if model.consent_purpose
        )
