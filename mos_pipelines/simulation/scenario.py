"""Scenario YAML: the knobs of the simulated world and the effects planted in it, validated.

A scenario file only needs the keys it changes: it is merged over the bundled ``default.yaml``
(mappings merge key by key, lists and values replace). Every key is documented in
``scenarios/README.md``. Any problem raises ``ScenarioError`` naming the file and the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mos_pipelines.configfile import At, choice, integer, number, parse_mapping, text
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


class ScenarioError(ValueError):
    """A scenario file is unreadable or invalid; the message names the file and the key."""


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


GENERIC_FIELDS = ("first_name", "last_name", "email", "phone", "company", "job_title", "country", "city", "postcode",
                  "birth_date")


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

    def volume_factor(self, day: int) -> float:
        """Traffic multiplier of a day from the volume schedule."""
        factor = 1.0
        for change in self.volume:
            if change.applies(day):
                factor *= change.factor
        return factor


# --------------------------------------------------------------------------------------------
# Loading


def load_scenario(path: Path | None) -> Scenario:
    """Read, merge over the default and validate a scenario file (None = the bundled default)."""
    file = Path(path) if path is not None else DEFAULT_SCENARIO
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"scenario {file}: cannot read the file ({exc.strerror or exc})") from exc
    data = parse_mapping(file, content, "scenario", ScenarioError)
    if file.resolve() != DEFAULT_SCENARIO.resolve():
        data = _merge(parse_mapping(DEFAULT_SCENARIO, DEFAULT_SCENARIO.read_bytes(), "scenario", ScenarioError), data)
    return _scenario(At(file, "", ScenarioError, "scenario"), data, file, hashlib.sha256(content).hexdigest())


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _mapping(at: At, value: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        at.fail(f"expected a mapping, got {value!r}")
    unknown = [k for k in value if k not in required and k not in optional]
    if unknown:
        (at / str(unknown[0])).fail(f"unknown key (expected one of: {', '.join(required + optional)})")
    for key in required:
        if key not in value:
            (at / key).fail("missing")
    return value


def _rate(at: At, value: Any) -> float:
    return number(at, value, 0.0, 1.0)


def _list(at: At, value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        at.fail(f"expected a list, got {value!r}")
    return value


def _per_region(at: At, value: Any) -> dict[str, float]:
    data = _mapping(at, value, REGIONS)
    return {r: _rate(at / r, data[r]) for r in REGIONS}


def _scenario(at: At, data: dict[str, Any], file: Path, sha256: str) -> Scenario:
    keys = ("name", "regions", "behaviour", "propensity", "identity_noise", "crm", "consent", "email",
            "email_campaigns", "dirty", "volume", "effects", "null_slices")
    _mapping(at, data, keys[1:], ("name",))
    regions = _per_region(at / "regions", data["regions"])
    if abs(sum(regions.values()) - 1.0) > 1e-6:
        (at / "regions").fail(f"shares must sum to 1, they sum to {sum(regions.values()):g}")
    campaigns = _email_campaigns(at / "email_campaigns", data["email_campaigns"])
    effects = tuple(_effect(at / "effects" / i, e, campaigns) for i, e in enumerate(_list(at / "effects", data["effects"])))
    null_slices = tuple(
        _null_slice(at / "null_slices" / i, s, campaigns)
        for i, s in enumerate(_list(at / "null_slices", data["null_slices"]))
    )
    _check_conflicts(at, effects, null_slices)
    return Scenario(
        name=text(at / "name", data.get("name", file.stem)),
        path=file,
        sha256=sha256,
        regions=regions,
        behaviour=_behaviour(at / "behaviour", data["behaviour"]),
        propensity=_propensity(at / "propensity", data["propensity"]),
        identity_noise=_identity_noise(at / "identity_noise", data["identity_noise"]),
        crm=_crm(at / "crm", data["crm"]),
        consent=_consent(at / "consent", data["consent"]),
        email=_email(at / "email", data["email"]),
        email_campaigns=campaigns,
        dirty=_dirty(at / "dirty", data["dirty"]),
        volume=tuple(_volume(at / "volume" / i, v) for i, v in enumerate(_list(at / "volume", data["volume"]))),
        effects=effects,
        null_slices=null_slices,
    )


def _behaviour(at: At, value: Any) -> Behaviour:
    data = _mapping(at, value, ("sessions_per_person_day", "weekend_factor", "conversion_rate", "signup_share"))
    return Behaviour(
        sessions_per_person_day=number(at / "sessions_per_person_day", data["sessions_per_person_day"], 0, 3),
        weekend_factor=number(at / "weekend_factor", data["weekend_factor"], 0, 2),
        conversion_rate=_rate(at / "conversion_rate", data["conversion_rate"]),
        signup_share=_rate(at / "signup_share", data["signup_share"]),
    )


def _identity_noise(at: At, value: Any) -> IdentityNoise:
    names = tuple(IdentityNoise.__dataclass_fields__)
    data = _mapping(at, value, names)
    return IdentityNoise(**{n: _rate(at / n, data[n]) for n in names})


def _propensity(at: At, value: Any) -> PropensityModel:
    from mos_pipelines.simulation.population import PROPENSITY_ATTRIBUTES  # population imports this module

    data = _mapping(at, value, ("intercept", "log_engagement", "noise_sd", "coefficients"))
    given = _mapping(at / "coefficients", data["coefficients"], tuple(PROPENSITY_ATTRIBUTES))
    coefficients = {}
    for attribute, values in PROPENSITY_ATTRIBUTES.items():
        here = at / "coefficients" / attribute
        spec = _mapping(here, given[attribute], values)
        coefficients[attribute] = {v: number(here / v, spec[v], -10, 10) for v in values}
    return PropensityModel(
        intercept=number(at / "intercept", data["intercept"], -20, 20),
        log_engagement=number(at / "log_engagement", data["log_engagement"], -5, 5),
        noise_sd=number(at / "noise_sd", data["noise_sd"], 0, 5),
        coefficients=coefficients,
    )


def _crm(at: At, value: Any) -> CrmSettings:
    data = _mapping(at, value, ("presence", "update_rate"), ("reexports", "generic"))
    presence = _mapping(at / "presence", data["presence"], CRM_SYSTEM_NAMES)
    reexports = []
    for i, item in enumerate(_list(at / "reexports", data.get("reexports"))):
        here = at / "reexports" / i
        spec = _mapping(here, item, ("day", "shuffle"), ("systems",))
        systems = _list(here / "systems", spec.get("systems", list(REEXPORT_SYSTEMS)))
        fields = _list(here / "shuffle", spec["shuffle"])
        if not fields:
            (here / "shuffle").fail(f"list at least one field to shuffle ({', '.join(REEXPORT_FIELDS)})")
        reexports.append(CrmReexport(
            day=integer(here / "day", spec["day"], 0),
            systems=tuple(choice(here / "systems" / j, x, REEXPORT_SYSTEMS) for j, x in enumerate(systems)),
            shuffle=tuple(choice(here / "shuffle" / j, x, REEXPORT_FIELDS) for j, x in enumerate(fields)),
        ))
    return CrmSettings(
        presence={s: _rate(at / "presence" / s, presence[s]) for s in CRM_SYSTEM_NAMES},
        update_rate=_rate(at / "update_rate", data["update_rate"]),
        reexports=tuple(reexports),
        generic=_generic_crm(at / "generic", data.get("generic")),
    )


def _generic_crm(at: At, value: Any) -> GenericCrmSettings:
    if value is None:
        return GenericCrmSettings()
    keys = ("presence", "records_per_person", "fields", "birth_date_error_rate")
    data = _mapping(at, value, (), keys)
    default = GenericCrmSettings()
    fields = _list(at / "fields", data.get("fields", list(default.fields)))
    return GenericCrmSettings(
        presence=_rate(at / "presence", data.get("presence", default.presence)),
        records_per_person=number(at / "records_per_person", data.get("records_per_person", default.records_per_person),
                                  1.0, 20.0),
        fields=tuple(choice(at / "fields" / i, f, GENERIC_FIELDS) for i, f in enumerate(fields)),
        birth_date_error_rate=_rate(at / "birth_date_error_rate",
                                    data.get("birth_date_error_rate", default.birth_date_error_rate)),
    )


def _consent(at: At, value: Any) -> ConsentSettings:
    data = _mapping(at, value, ("initial_grant_rate", "daily_grant_rate", "daily_revoke_rate"))
    return ConsentSettings(
        initial_grant_rate=_per_region(at / "initial_grant_rate", data["initial_grant_rate"]),
        daily_grant_rate=_rate(at / "daily_grant_rate", data["daily_grant_rate"]),
        daily_revoke_rate=_rate(at / "daily_revoke_rate", data["daily_revoke_rate"]),
    )


def _email(at: At, value: Any) -> EmailSettings:
    data = _mapping(at, value, ("bounce_rate", "unsubscribe_rate", "open_rate", "click_rate"))
    open_rate = _per_region(at / "open_rate", data["open_rate"])
    click_rate = _per_region(at / "click_rate", data["click_rate"])
    for region in REGIONS:
        if click_rate[region] > open_rate[region]:
            (at / "click_rate" / region).fail(
                f"clicks per delivered email ({click_rate[region]:g}) cannot exceed opens ({open_rate[region]:g})"
            )
    return EmailSettings(
        bounce_rate=_rate(at / "bounce_rate", data["bounce_rate"]),
        unsubscribe_rate=_rate(at / "unsubscribe_rate", data["unsubscribe_rate"]),
        open_rate=open_rate,
        click_rate=click_rate,
    )


def _email_campaigns(at: At, value: Any) -> tuple[EmailCampaignSpec, ...]:
    campaigns: list[EmailCampaignSpec] = []
    for i, item in enumerate(_list(at, value)):
        here = at / i
        data = _mapping(
            here, item,
            ("id", "name", "first_day", "every_days", "audience_share", "holdout_share", "cost_per_send", "variants"),
            ("objective",),
        )
        campaign_id = text(here / "id", data["id"])
        if any(c.campaign_id == campaign_id for c in campaigns):
            (here / "id").fail(f"duplicate campaign id {campaign_id!r}")
        variants_at = here / "variants"
        if not isinstance(data["variants"], dict) or not data["variants"]:
            variants_at.fail("expected a mapping of variant id -> {name, open_multiplier, click_multiplier}")
        variants = []
        for variant_id, spec in data["variants"].items():
            v_at = variants_at / str(variant_id)
            variant_id = text(v_at, variant_id)
            if variant_id == HOLDOUT_VARIANT:
                v_at.fail(f"'{HOLDOUT_VARIANT}' is reserved for the holdout group (set holdout_share instead)")
            spec = _mapping(v_at, spec, ("name",), ("open_multiplier", "click_multiplier"))
            variants.append(EmailVariant(
                variant_id=variant_id,
                name=text(v_at / "name", spec["name"]),
                open_multiplier=number(v_at / "open_multiplier", spec.get("open_multiplier", 1.0), 0, low_open=True),
                click_multiplier=number(v_at / "click_multiplier", spec.get("click_multiplier", 1.0), 0,
                                         low_open=True),
            ))
        campaigns.append(EmailCampaignSpec(
            campaign_id=campaign_id,
            name=text(here / "name", data["name"]),
            objective=text(here / "objective", data.get("objective", "conversion")),
            first_day=integer(here / "first_day", data["first_day"], 0),
            every_days=integer(here / "every_days", data["every_days"], 1),
            audience_share=_rate(here / "audience_share", data["audience_share"]),
            holdout_share=number(here / "holdout_share", data["holdout_share"], 0, 0.9),
            cost_per_send=number(here / "cost_per_send", data["cost_per_send"], 0),
            variants=tuple(variants),
        ))
    return tuple(campaigns)


def _dirty(at: At, value: Any) -> dict[str, DirtyRates]:
    data = _mapping(at, value, (), tuple(DIRTY_KEYS))
    rates: dict[str, DirtyRates] = {}
    for source, allowed in DIRTY_KEYS.items():
        spec = _mapping(at / source, data.get(source) or {}, (), allowed)
        rates[source] = DirtyRates(**{k: _rate(at / source / k, v) for k, v in spec.items()})
    return rates


def _volume(at: At, value: Any) -> VolumeChange:
    data = _mapping(at, value, ("from_day", "factor"), ("to_day",))
    from_day = integer(at / "from_day", data["from_day"], 0)
    to_day = data.get("to_day")
    if to_day is not None:
        to_day = integer(at / "to_day", to_day, from_day)
    return VolumeChange(from_day, to_day, number(at / "factor", data["factor"], 0, 10))


def _find_campaign(at: At, campaigns: tuple[EmailCampaignSpec, ...], campaign_id: Any) -> EmailCampaignSpec:
    for campaign in campaigns:
        if campaign.campaign_id == campaign_id:
            return campaign
    at.fail(f"no email campaign with id {campaign_id!r} (known: {', '.join(c.campaign_id for c in campaigns)})")


def _effect(at: At, value: Any, campaigns: tuple[EmailCampaignSpec, ...]) -> Effect:
    _mapping(at, value, ("type",), ("channel", "region", "multiplier", "campaign", "variant", "metric", "lift"))
    kind = choice(at / "type", value["type"], ("channel_conversion", "variant_lift"))
    if kind == "channel_conversion":
        data = _mapping(at, value, ("type", "channel", "region", "multiplier"))
        return ChannelConversion(
            channel=choice(at / "channel", data["channel"], CHANNEL_NAMES),
            region=choice(at / "region", data["region"], REGIONS),
            multiplier=number(at / "multiplier", data["multiplier"], 0, 20, low_open=True),
        )
    data = _mapping(at, value, ("type", "campaign", "variant", "region", "lift"), ("metric",))
    campaign = _find_campaign(at / "campaign", campaigns, data["campaign"])
    variant = choice(at / "variant", data["variant"], tuple(v.variant_id for v in campaign.variants))
    return VariantLift(
        campaign=campaign.campaign_id,
        variant=variant,
        region=choice(at / "region", data["region"], REGIONS),
        metric=choice(at / "metric", data.get("metric", "click"), EMAIL_METRICS),
        lift=number(at / "lift", data["lift"], -1, 10, low_open=True),
    )


def _null_slice(at: At, value: Any, campaigns: tuple[EmailCampaignSpec, ...]) -> NullSlice:
    _mapping(at, value, ("type",), ("campaign", "channels", "region"))
    kind = choice(at / "type", value["type"], ("variants_equal", "channels_equal"))
    if kind == "variants_equal":
        data = _mapping(at, value, ("type", "campaign", "region"))
        campaign = _find_campaign(at / "campaign", campaigns, data["campaign"])
        return VariantsEqual(campaign.campaign_id, choice(at / "region", data["region"], REGIONS))
    data = _mapping(at, value, ("type", "channels", "region"))
    channels = _list(at / "channels", data["channels"])
    for i, channel in enumerate(channels):
        choice(at / "channels" / i, channel, CHANNEL_NAMES)
    if len(set(channels)) < 2:
        (at / "channels").fail("list at least two different channels")
    return ChannelsEqual(tuple(channels), choice(at / "region", data["region"], REGIONS))


def _check_conflicts(at: At, effects: tuple[Effect, ...], null_slices: tuple[NullSlice, ...]) -> None:
    """An effect may not plant a difference inside a slice declared to have none."""
    for i, effect in enumerate(effects):
        for j, null in enumerate(null_slices):
            clash = (
                isinstance(effect, ChannelConversion) and isinstance(null, ChannelsEqual)
                and effect.region == null.region and effect.channel in null.channels
            ) or (
                isinstance(effect, VariantLift) and isinstance(null, VariantsEqual)
                and (effect.campaign, effect.region) == (null.campaign, null.region)
            )
            if clash:
                (at / "effects" / i).fail(f"plants an effect inside null_slices[{j}], where nothing may differ")
