"""Scenario YAML: the knobs of the simulated world and the effects planted in it, validated.

A scenario file only needs the keys it changes: it is merged over the bundled ``default.yaml``
(mappings merge key by key, lists and values replace), by the one configuration loader
(``mos_pipelines.configuration``). Every key is documented in ``scenarios/README.md``. Any problem raises
``ScenarioError`` (a ``ConfigError``: file, key, expected, got).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from mos_pipelines.configuration.base import DomainSettings, Invalid, Section, Text, unique
from mos_pipelines.configuration.errors import ConfigError, phrased
from mos_pipelines.configuration.loader import load_documents, read_document
from mos_pipelines.simulation.channels import CHANNEL_NAMES
from mos_pipelines.simulation.geography import REGIONS

DEFAULT_SCENARIO = Path(__file__).parent / "scenarios" / "default.yaml"
CRM_SYSTEM_NAMES = ("hubspot", "salesforce", "webinar")
REEXPORT_SYSTEMS = ("hubspot", "salesforce")  # the webinar tool holds no titles or companies to re-map
REEXPORT_FIELDS = ("job_title", "company")
EMAIL_METRICS = ("open", "click", "conversion")
HOLDOUT_VARIANT = "holdout"

# Dirty-data rates each landing source accepts.
DIRTY_KEYS: dict[str, tuple[str, ...]] = {
    "events": ("malformed_rate", "missing_id_rate", "duplicate_rate", "late_rate"),
    "orders": ("malformed_rate", "missing_id_rate", "duplicate_rate"),
    "email": ("malformed_rate", "missing_id_rate", "duplicate_rate"),
    "crm_contacts": ("malformed_rate", "missing_id_rate"),
    "consent": ("malformed_rate", "missing_id_rate"),
    "ad_spend": ("malformed_rate", "missing_id_rate"),
    "crm_notes": ("malformed_rate", "missing_id_rate"),
}


class ScenarioError(ConfigError):
    """A scenario file is unreadable or invalid: the file, the key, what was expected and what was found."""


@dataclass(frozen=True)
class Behaviour:
    sessions_per_person_day: float
    weekend_factor: float
    conversion_rate: float
    signup_share: float


@dataclass(frozen=True)
class IdentityNoise:
    typo_rate: float
    case_rate: float
    whitespace_rate: float
    accent_strip_rate: float
    nickname_rate: float
    swap_names_rate: float
    missing_field_rate: float
    gmail_variant_rate: float
    personal_email_rate: float
    junk_identifier_rate: float
    duplicate_record_rate: float


@dataclass(frozen=True)
class CrmReexport:
    """On ``day``, ``systems`` export every record again with ``shuffle`` fields permuted across records."""

    day: int
    systems: tuple[str, ...]
    shuffle: tuple[str, ...]


GENERIC_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "job_title",
    "country",
    "city",
    "postcode",
    "birth_date",
)


@dataclass(frozen=True)
class GenericCrmSettings:
    """A bring-your-own CRM export in ``crm_contacts/generic/`` (canonical columns); none by default."""

    presence: float = 0.0  # share of people with a record there
    records_per_person: float = 1.0  # mean records of a person present there: 1 + Poisson(mean - 1)
    fields: tuple[str, ...] = GENERIC_FIELDS  # the person's fields the export holds; the others are empty
    birth_date_error_rate: float = 0.0  # one digit mistyped, day and month swapped, or the year off by one


@dataclass(frozen=True)
class CrmSettings:
    presence: dict[str, float]  # system -> share of people with a record there
    update_rate: float
    reexports: tuple[CrmReexport, ...] = ()
    generic: GenericCrmSettings = GenericCrmSettings()


@dataclass(frozen=True)
class PropensityModel:
    """The latent propensity (the lookalike truth): logistic in a person's attributes and engagement."""

    intercept: float
    log_engagement: float
    noise_sd: float
    coefficients: dict[str, dict[str, float]]  # attribute -> value -> coefficient


@dataclass(frozen=True)
class ConsentSettings:
    initial_grant_rate: dict[str, float]  # region -> share granting each purpose before day 0
    daily_grant_rate: float
    daily_revoke_rate: float


@dataclass(frozen=True)
class EmailSettings:
    bounce_rate: float
    unsubscribe_rate: float  # of opens
    open_rate: dict[str, float]  # region -> opens per delivered email
    click_rate: dict[str, float]  # region -> clicks per delivered email


@dataclass(frozen=True)
class EmailVariant:
    variant_id: str
    name: str
    open_multiplier: float
    click_multiplier: float


@dataclass(frozen=True)
class EmailCampaignSpec:
    campaign_id: str
    name: str
    objective: str
    first_day: int
    every_days: int
    audience_share: float
    holdout_share: float
    cost_per_send: float
    variants: tuple[EmailVariant, ...]

    def sends_on(self, day: int) -> bool:
        return day >= self.first_day and (day - self.first_day) % self.every_days == 0


@dataclass(frozen=True)
class DirtyRates:
    malformed_rate: float = 0.0
    missing_id_rate: float = 0.0
    duplicate_rate: float = 0.0
    late_rate: float = 0.0


@dataclass(frozen=True)
class VolumeChange:
    from_day: int
    to_day: int | None  # inclusive; None = until the end
    factor: float

    def applies(self, day: int) -> bool:
        return day >= self.from_day and (self.to_day is None or day <= self.to_day)


@dataclass(frozen=True)
class ChannelConversion:
    """Sessions of ``channel`` in ``region`` convert ``multiplier`` times as often."""

    channel: str
    region: str
    multiplier: float


@dataclass(frozen=True)
class VariantLift:
    """``variant`` of email ``campaign`` has ``metric`` rate × (1 + lift) in ``region``."""

    campaign: str
    variant: str
    region: str
    metric: str
    lift: float


@dataclass(frozen=True)
class VariantsEqual:
    """Null slice: every variant of ``campaign`` has the same rates in ``region``."""

    campaign: str
    region: str


@dataclass(frozen=True)
class ChannelsEqual:
    """Null slice: ``channels`` convert at the same rate in ``region``."""

    channels: tuple[str, ...]
    region: str


# Person attributes a segment effect can select on (population.py); signup_recency is the person's sign-up as
# of day 0: recent (in the 90 days before), established (earlier) or none (not signed up by day 0).
SEGMENT_ATTRIBUTES = ("persona", "size_band", "seniority", "industry", "signup_recency")
SIGNUP_RECENCY = ("recent", "established", "none")
RECENT_SIGNUP_DAYS = 90


@dataclass(frozen=True)
class VariantSegmentLift:
    """Heterogeneous effect: ``variant`` of ``campaign`` has ``metric`` rate × (1 + lift) for people whose
    ``attribute`` is ``value`` (in every region), so the best variant can differ by persona, size or recency."""

    campaign: str
    variant: str
    attribute: str
    value: str
    metric: str
    lift: float


Effect = ChannelConversion | VariantLift
NullSlice = VariantsEqual | ChannelsEqual


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    sha256: str  # of the scenario file as given
    regions: dict[str, float]
    behaviour: Behaviour
    propensity: PropensityModel
    identity_noise: IdentityNoise
    crm: CrmSettings
    consent: ConsentSettings
    email: EmailSettings
    email_campaigns: tuple[EmailCampaignSpec, ...]
    dirty: dict[str, DirtyRates]
    volume: tuple[VolumeChange, ...]
    effects: tuple[Effect, ...]
    null_slices: tuple[NullSlice, ...]
    segment_effects: tuple[VariantSegmentLift, ...] = ()  # off by default: worlds without them are unchanged

    def volume_factor(self, day: int) -> float:
        """Traffic multiplier of a day from the volume schedule."""
        factor = 1.0
        for change in self.volume:
            if change.applies(day):
                factor *= change.factor
        return factor


# --------------------------------------------------------------------------------------------
# Loading: the file merged over the bundled default.yaml by the one configuration loader, validated by the
# pydantic models below (unknown keys forbidden), then turned into the dataclasses above.


def load_scenario(path: Path | None) -> Scenario:
    """Read, merge over the default and validate a scenario file (None = the bundled default)."""
    file = Path(path) if path is not None else DEFAULT_SCENARIO
    try:
        documents = [read_document(DEFAULT_SCENARIO)]
        if file.resolve() != DEFAULT_SCENARIO.resolve():
            documents.append(read_document(file))
        content = file.read_bytes()
        spec = load_documents(_ScenarioFile, documents)
    except ConfigError as exc:
        raise ScenarioError.of(list(exc.problems)) from None
    return spec.to_scenario(file, hashlib.sha256(content).hexdigest())


Rate = Annotated[float, Field(strict=True, ge=0, le=1)]
RegionName = Literal[REGIONS]  # type: ignore[valid-type]
ChannelName = Literal[CHANNEL_NAMES]  # type: ignore[valid-type]


def _per_region(value: dict[str, float]) -> dict[str, float]:
    """Every region once, in the order of REGIONS."""
    for region in REGIONS:
        if region not in value:
            raise Invalid(f"a rate for every region ({', '.join(REGIONS)})", (region,))
    return {r: value[r] for r in REGIONS}


PerRegion = Annotated[dict[RegionName, Rate], AfterValidator(_per_region)]


class _Behaviour(Section):
    sessions_per_person_day: float = Field(strict=True, ge=0, le=3)
    weekend_factor: float = Field(strict=True, ge=0, le=2)
    conversion_rate: Rate
    signup_share: Rate


class _Propensity(Section):
    intercept: float = Field(strict=True, ge=-20, le=20)
    log_engagement: float = Field(strict=True, ge=-5, le=5)
    noise_sd: float = Field(strict=True, ge=0, le=5)
    coefficients: dict[str, dict[str, Annotated[float, Field(strict=True, ge=-10, le=10)]]]

    @field_validator("coefficients")
    @classmethod
    def _every_attribute_value(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        from mos_pipelines.simulation.population import PROPENSITY_ATTRIBUTES  # population imports this module

        for attribute, given in value.items():
            if attribute not in PROPENSITY_ATTRIBUTES:
                raise Invalid(
                    f"one of the attributes {', '.join(PROPENSITY_ATTRIBUTES)}",
                    (attribute,),
                    got=phrased(f"the unknown key {attribute!r}"),
                    has_got=True,
                )
            for name in given:
                if name not in PROPENSITY_ATTRIBUTES[attribute]:
                    raise Invalid(
                        f"one of {', '.join(PROPENSITY_ATTRIBUTES[attribute])}",
                        (attribute, name),
                        got=phrased(f"the unknown key {name!r}"),
                        has_got=True,
                    )
        for attribute, names in PROPENSITY_ATTRIBUTES.items():
            for name in names:
                if name not in value.get(attribute, {}):
                    raise Invalid("a coefficient for every value of every attribute", (attribute, name))
        return {a: {n: value[a][n] for n in names} for a, names in PROPENSITY_ATTRIBUTES.items()}


class _IdentityNoise(Section):
    typo_rate: Rate
    case_rate: Rate
    whitespace_rate: Rate
    accent_strip_rate: Rate
    nickname_rate: Rate
    swap_names_rate: Rate
    missing_field_rate: Rate
    gmail_variant_rate: Rate
    personal_email_rate: Rate
    junk_identifier_rate: Rate
    duplicate_record_rate: Rate


class _Reexport(Section):
    day: int = Field(strict=True, ge=0)
    systems: tuple[Literal[REEXPORT_SYSTEMS], ...] = REEXPORT_SYSTEMS  # type: ignore[valid-type]
    shuffle: tuple[Literal[REEXPORT_FIELDS], ...] = Field(min_length=1)  # type: ignore[valid-type]


class _GenericCrm(Section):
    presence: Rate = GenericCrmSettings.presence
    records_per_person: float = Field(GenericCrmSettings.records_per_person, strict=True, ge=1, le=20)
    fields: tuple[Literal[GENERIC_FIELDS], ...] = GENERIC_FIELDS  # type: ignore[valid-type]
    birth_date_error_rate: Rate = GenericCrmSettings.birth_date_error_rate


class _Crm(Section):
    presence: dict[Literal[CRM_SYSTEM_NAMES], Rate]  # type: ignore[valid-type]
    update_rate: Rate
    reexports: tuple[_Reexport, ...] = ()
    generic: _GenericCrm = _GenericCrm()

    @field_validator("presence")
    @classmethod
    def _every_system(cls, value: dict[str, float]) -> dict[str, float]:
        for system in CRM_SYSTEM_NAMES:
            if system not in value:
                raise Invalid("a share for every CRM system", (system,))
        return {s: value[s] for s in CRM_SYSTEM_NAMES}


class _Consent(Section):
    initial_grant_rate: PerRegion
    daily_grant_rate: Rate
    daily_revoke_rate: Rate


class _Email(Section):
    bounce_rate: Rate
    unsubscribe_rate: Rate
    open_rate: PerRegion
    click_rate: PerRegion

    @model_validator(mode="after")
    def _clicks_within_opens(self) -> _Email:
        for region in REGIONS:
            if self.click_rate[region] > self.open_rate[region]:
                raise Invalid(
                    f"clicks per delivered email at most the opens ({self.open_rate[region]:g})", ("click_rate", region)
                )
        return self


class _Variant(Section):
    name: Text
    open_multiplier: float = Field(1.0, strict=True, gt=0)
    click_multiplier: float = Field(1.0, strict=True, gt=0)


class _Campaign(Section):
    id: Text
    name: Text
    objective: Text = "conversion"
    first_day: int = Field(strict=True, ge=0)
    every_days: int = Field(strict=True, ge=1)
    audience_share: Rate
    holdout_share: float = Field(strict=True, ge=0, le=0.9)
    cost_per_send: float = Field(strict=True, ge=0)
    variants: dict[Text, _Variant] = Field(min_length=1)

    @field_validator("variants")
    @classmethod
    def _holdout_reserved(cls, value: dict[str, _Variant]) -> dict[str, _Variant]:
        if HOLDOUT_VARIANT in value:
            raise Invalid(
                f"a variant id other than '{HOLDOUT_VARIANT}' (reserved for the holdout group: set "
                "holdout_share instead)",
                (HOLDOUT_VARIANT,),
                got=HOLDOUT_VARIANT,
                has_got=True,
            )
        return value


class _Dirty(Section):
    """Dirty-data rates: each source accepts the rates of DIRTY_KEYS."""

    events: _DirtyEvents = None  # type: ignore[assignment]
    orders: _DirtyDuplicates = None  # type: ignore[assignment]
    email: _DirtyDuplicates = None  # type: ignore[assignment]
    crm_contacts: _DirtyRows = None  # type: ignore[assignment]
    consent: _DirtyRows = None  # type: ignore[assignment]
    ad_spend: _DirtyRows = None  # type: ignore[assignment]
    crm_notes: _DirtyRows = None  # type: ignore[assignment]


class _DirtyRows(Section):
    malformed_rate: Rate = 0.0
    missing_id_rate: Rate = 0.0


class _DirtyDuplicates(_DirtyRows):
    duplicate_rate: Rate = 0.0


class _DirtyEvents(_DirtyDuplicates):
    late_rate: Rate = 0.0


_Dirty.model_rebuild()


class _Volume(Section):
    from_day: int = Field(strict=True, ge=0)
    to_day: int | None = Field(None, strict=True)
    factor: float = Field(strict=True, ge=0, le=10)

    @field_validator("to_day")
    @classmethod
    def _after_from(cls, value: int | None, info: ValidationInfo) -> int | None:
        start = info.data.get("from_day")
        if value is not None and start is not None and value < start:
            raise ValueError(f"a day >= from_day ({start})")
        return value


class _ChannelConversion(Section):
    type: Literal["channel_conversion"]
    channel: ChannelName
    region: RegionName
    multiplier: float = Field(strict=True, gt=0, le=20)


class _VariantLift(Section):
    type: Literal["variant_lift"]
    campaign: Text
    variant: Text
    region: RegionName
    metric: Literal[EMAIL_METRICS] = "click"  # type: ignore[valid-type]
    lift: float = Field(strict=True, gt=-1, le=10)


class _VariantsEqual(Section):
    type: Literal["variants_equal"]
    campaign: Text
    region: RegionName


class _ChannelsEqual(Section):
    type: Literal["channels_equal"]
    channels: tuple[ChannelName, ...]
    region: RegionName

    @field_validator("channels")
    @classmethod
    def _two(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) < 2:
            raise ValueError("at least two different channels")
        return value


class _SegmentLift(Section):
    campaign: Text
    variant: Text
    attribute: Literal[SEGMENT_ATTRIBUTES]  # type: ignore[valid-type]
    value: Text
    metric: Literal[EMAIL_METRICS] = "click"  # type: ignore[valid-type]
    lift: float = Field(strict=True, gt=-1, le=10)

    @model_validator(mode="after")
    def _known_value(self) -> _SegmentLift:
        from mos_pipelines.simulation.population import PROPENSITY_ATTRIBUTES  # population imports this module

        values = SIGNUP_RECENCY if self.attribute == "signup_recency" else PROPENSITY_ATTRIBUTES[self.attribute]
        if self.value not in values:
            raise Invalid(f"one of the {self.attribute} values {', '.join(values)}", ("value",))
        return self


_Effect = Annotated[_ChannelConversion | _VariantLift, Field(discriminator="type")]
_NullSlice = Annotated[_VariantsEqual | _ChannelsEqual, Field(discriminator="type")]


class _ScenarioFile(DomainSettings):
    name: Text | None = None  # default: the file's name
    regions: dict[RegionName, Rate]
    behaviour: _Behaviour
    propensity: _Propensity
    identity_noise: _IdentityNoise
    crm: _Crm
    consent: _Consent
    email: _Email
    email_campaigns: tuple[_Campaign, ...]
    dirty: _Dirty
    volume: tuple[_Volume, ...]
    effects: tuple[_Effect, ...]
    null_slices: tuple[_NullSlice, ...]
    segment_effects: tuple[_SegmentLift, ...] = ()  # heterogeneous effects; none unless a scenario adds them

    @field_validator("regions")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        value = _per_region(value)
        if abs(sum(value.values()) - 1.0) > 1e-6:
            raise ValueError(f"shares that sum to 1 (they sum to {sum(value.values()):g})")
        return value

    @field_validator("email_campaigns")
    @classmethod
    def _unique_ids(cls, value: tuple[_Campaign, ...]) -> tuple[_Campaign, ...]:
        return unique(value, "id", "a campaign id")

    @model_validator(mode="after")
    def _effects_fit(self) -> _ScenarioFile:
        campaigns = {c.id: c for c in self.email_campaigns}
        known = ", ".join(campaigns) or "none"
        for key, items in (("effects", self.effects), ("null_slices", self.null_slices)):
            for index, item in enumerate(items):
                if isinstance(item, (_VariantLift, _VariantsEqual)):
                    if item.campaign not in campaigns:
                        raise Invalid(f"the id of an email campaign ({known})", (key, index, "campaign"))
                    variants = tuple(campaigns[item.campaign].variants)
                    if isinstance(item, _VariantLift) and item.variant not in variants:
                        raise Invalid(f"one of the campaign's variants {', '.join(variants)}", (key, index, "variant"))
        for index, lift in enumerate(self.segment_effects):
            if lift.campaign not in campaigns:
                raise Invalid(f"the id of an email campaign ({known})", ("segment_effects", index, "campaign"))
            variants = tuple(campaigns[lift.campaign].variants)
            if lift.variant not in variants:
                raise Invalid(
                    f"one of the campaign's variants {', '.join(variants)}", ("segment_effects", index, "variant")
                )
            for j, null in enumerate(self.null_slices):
                if isinstance(null, _VariantsEqual) and null.campaign == lift.campaign:
                    raise Invalid(
                        f"a campaign without a variants_equal null slice (null_slices[{j}]: it applies in every "
                        "region, so it would break that slice)",
                        ("segment_effects", index, "campaign"),
                    )
        for i, effect in enumerate(self.effects):
            for j, null in enumerate(self.null_slices):
                clash = (
                    isinstance(effect, _ChannelConversion)
                    and isinstance(null, _ChannelsEqual)
                    and effect.region == null.region
                    and effect.channel in null.channels
                ) or (
                    isinstance(effect, _VariantLift)
                    and isinstance(null, _VariantsEqual)
                    and (effect.campaign, effect.region) == (null.campaign, null.region)
                )
                if clash:
                    raise Invalid(
                        f"an effect outside null_slices[{j}], where nothing may differ",
                        ("effects", i),
                        got=phrased("an effect inside it"),
                        has_got=True,
                    )
        return self

    def to_scenario(self, file: Path, sha256: str) -> Scenario:
        """The simulator's view of the validated file."""
        dirty = {
            source: DirtyRates(**(getattr(self.dirty, source).model_dump() if getattr(self.dirty, source) else {}))
            for source in DIRTY_KEYS
        }
        return Scenario(
            name=self.name or file.stem,
            path=file,
            sha256=sha256,
            regions=dict(self.regions),
            behaviour=Behaviour(**self.behaviour.model_dump()),
            propensity=PropensityModel(**self.propensity.model_dump()),
            identity_noise=IdentityNoise(**self.identity_noise.model_dump()),
            crm=CrmSettings(
                presence=dict(self.crm.presence),
                update_rate=self.crm.update_rate,
                reexports=tuple(CrmReexport(r.day, tuple(r.systems), tuple(r.shuffle)) for r in self.crm.reexports),
                generic=GenericCrmSettings(
                    self.crm.generic.presence,
                    self.crm.generic.records_per_person,
                    tuple(self.crm.generic.fields),
                    self.crm.generic.birth_date_error_rate,
                ),
            ),
            consent=ConsentSettings(**self.consent.model_dump()),
            email=EmailSettings(**self.email.model_dump()),
            email_campaigns=tuple(
                EmailCampaignSpec(
                    campaign_id=c.id,
                    name=c.name,
                    objective=c.objective,
                    first_day=c.first_day,
                    every_days=c.every_days,
                    audience_share=c.audience_share,
                    holdout_share=c.holdout_share,
                    cost_per_send=c.cost_per_send,
                    variants=tuple(
                        EmailVariant(v_id, v.name, v.open_multiplier, v.click_multiplier)
                        for v_id, v in c.variants.items()
                    ),
                )
                for c in self.email_campaigns
            ),
            dirty=dirty,
            volume=tuple(VolumeChange(v.from_day, v.to_day, v.factor) for v in self.volume),
            effects=tuple(
                ChannelConversion(e.channel, e.region, e.multiplier)
                if isinstance(e, _ChannelConversion)
                else VariantLift(e.campaign, e.variant, e.region, e.metric, e.lift)
                for e in self.effects
            ),
            null_slices=tuple(
                VariantsEqual(n.campaign, n.region)
                if isinstance(n, _VariantsEqual)
                else ChannelsEqual(tuple(n.channels), n.region)
                for n in self.null_slices
            ),
            segment_effects=tuple(
                VariantSegmentLift(e.campaign, e.variant, e.attribute, e.value, e.metric, e.lift)
                for e in self.segment_effects
            ),
        )
