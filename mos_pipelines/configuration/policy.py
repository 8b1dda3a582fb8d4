"""``config/policy.yaml``: what a good fit is (ICP), who gets which lead (routing), and how often, when and after
what a person may be contacted (contact policy).

Read by ``mos_pipelines.policy`` (``policy.icp_scores``, ``policy.routing_assignments``,
``policy.contact_eligibility``, ``mos policy show / validate``). Every row those tables hold carries ``version()``:
a hash of the normalised settings (the bundled file with any ``MOS_POLICY_CONFIG`` override merged in), so a row
always names the policy that produced it; ``policy.versions`` keeps the content of each version.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from mos_pipelines.configuration.base import (
    Count,
    DomainSettings,
    Flag,
    Identifier,
    Invalid,
    NonNegative,
    Number,
    Positive,
    Relation,
    Section,
    Share,
    SnakeName,
    Text,
    Whole,
    replace,
    unique,
)

Tier = Literal["A", "B", "C", "D"]
Level = Literal["high", "medium", "low"]
Role = Literal["AE", "BDR"]
Value = str | bool | float | int
TIERS: tuple[str, ...] = ("A", "B", "C", "D")
LEVELS: tuple[str, ...] = ("high", "medium", "low")


# -- ICP -------------------------------------------------------------------------------------------------------


class FitRule(Section):
    """A firmographic rule over ``marts.dim_customer_features``: fires when the customer's ``column`` is one of
    ``in``, or lies within [``min``, ``max``]; a null value never fires."""

    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)  # dumped as `in`, as written

    name: SnakeName
    column: Identifier
    weight: Positive
    values: tuple[Value, ...] | None = Field(None, alias="in", min_length=1)
    min: Number | None = None
    max: Number | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_test(self) -> FitRule:
        has_range = self.min is not None or self.max is not None
        if (self.values is None) == (not has_range):
            raise Invalid("either `in` (a list of values) or `min` and/or `max` (numbers), not both", ())
        if self.min is not None and self.max is not None and self.min > self.max:
            raise Invalid(f"a max >= min ({self.min:g})", ("max",))
        return self

    def describe(self) -> str:
        if self.values is not None:
            return f"{self.column} in ({', '.join(map(str, self.values))})"
        parts = []
        if self.min is not None:
            parts.append(f"{self.column} >= {self.min:g}")
        if self.max is not None:
            parts.append(f"{self.column} <= {self.max:g}")
        return " and ".join(parts)


class Signal(Section):
    """One kind of engagement: rows of ``relation`` (one per action) with a customer and a time; each counts
    ``weight`` × 2^(−age in days / half-life)."""

    name: SnakeName
    relation: Relation
    where: Text | None = None  # SQL predicate over the relation's columns
    customer_column: Identifier = "customer_id"
    time_column: Identifier
    weight: Positive


class Engagement(Section):
    half_life_days: Positive
    lookback_days: Count
    signals: tuple[Signal, ...] = Field(min_length=1)

    @field_validator("signals")
    @classmethod
    def _unique(cls, value: tuple[Signal, ...]) -> tuple[Signal, ...]:
        return unique(value, "name", "a signal name")


class Thresholds(Section):
    """Scores at or above ``high`` are high, at or above ``medium`` medium, the rest low."""

    high: Number
    medium: Number

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.medium > self.high:
            raise Invalid(f"a number <= high ({self.high:g})", ("medium",))
        return self

    def level(self, score: float) -> str:
        return "high" if score >= self.high else "medium" if score >= self.medium else "low"


class TierMatrix(Section):
    """Tier by fit level (the keys) and engagement level (each list: engagement high, medium, low)."""

    high: tuple[Tier, Tier, Tier]
    medium: tuple[Tier, Tier, Tier]
    low: tuple[Tier, Tier, Tier]

    def tier(self, fit_level: str, engagement_level: str) -> str:
        return str(getattr(self, fit_level)[LEVELS.index(engagement_level)])


class Tiers(Section):
    fit: Thresholds
    engagement: Thresholds
    matrix: TierMatrix


class IcpSettings(Section):
    fit_rules: tuple[FitRule, ...] = replace(min_length=1)
    engagement: Engagement
    tiers: Tiers

    @field_validator("fit_rules")
    @classmethod
    def _unique(cls, value: tuple[FitRule, ...]) -> tuple[FitRule, ...]:
        return unique(value, "name", "a rule name")


# -- routing ---------------------------------------------------------------------------------------------------


class Rep(Section):
    id: Text
    weight: Positive = 1.0  # share of the team's leads, relative to the other reps
    capacity: Count  # open leads (assigned and still in a lead stage) the rep may hold at once
    available: Flag = True  # false: on leave, skipped by the round robin


class Team(Section):
    role: Role
    reps: tuple[Rep, ...] = Field(min_length=1)

    @field_validator("reps")
    @classmethod
    def _unique(cls, value: tuple[Rep, ...]) -> tuple[Rep, ...]:
        return unique(value, "id", "a rep id")


class When(Section):
    """Conditions of a routing rule, all of which must hold; a lead's null value matches no list."""

    tier: tuple[Tier, ...] | None = None
    segment: tuple[Text, ...] | None = None  # company-size band (transform.yaml mos__marketing_customer_segments)
    region: tuple[Text, ...] | None = None
    country_code: tuple[Text, ...] | None = None
    industry: tuple[Text, ...] | None = None
    persona: tuple[Text, ...] | None = None
    seniority: tuple[Text, ...] | None = None
    lifecycle_stage: tuple[Text, ...] | None = None
    owned: Flag | None = None  # the lead's account has an owner

    def conditions(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class RoutingRule(Section):
    name: SnakeName
    when: When | None = None  # none: the catch-all (matches every lead)
    to: Text  # `owner` (the account's owner) or a team name
    reroute: Flag = False  # a lead routed earlier by another rule that now matches this one is routed again
    description: str = ""

    @property
    def is_catch_all(self) -> bool:
        return self.when is None or not self.when.conditions()


class Ownership(Section):
    """Where an account's owner comes from. No landing source carries a CRM owner today: an account's owner is
    the rep its earliest still-current routed lead went to (``from_assignments``), or its row in ``owner_table``
    (columns ``account_key, owner``) when that table exists; the table wins."""

    from_assignments: Flag
    owner_table: Relation | None = None
    owner_role: Role  # the role recorded for a lead routed to an owner who is in no team


class RoutingSettings(Section):
    lead_stages: tuple[Text, ...] = Field(min_length=1)  # values of marts.dim_customer_lifecycle.lifecycle_stage
    ownership: Ownership
    teams: dict[SnakeName, Team] = replace(min_length=1)
    rules: tuple[RoutingRule, ...] = replace(min_length=1)

    @field_validator("teams")
    @classmethod
    def _reps_once(cls, value: dict[str, Team]) -> dict[str, Team]:
        seen: dict[str, str] = {}
        for name, team in value.items():
            for index, rep in enumerate(team.reps):
                if rep.id in seen:
                    raise Invalid(
                        f"each rep in one team ({rep.id!r} is also in {seen[rep.id]})", (name, "reps", index, "id")
                    )
                seen[rep.id] = name
        return value

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, value: tuple[RoutingRule, ...]) -> tuple[RoutingRule, ...]:
        return unique(value, "name", "a rule name")

    @model_validator(mode="after")
    def _rules(self) -> RoutingSettings:
        for index, rule in enumerate(self.rules):
            if rule.to != "owner" and rule.to not in self.teams:
                raise Invalid(f"`owner` or one of the teams ({', '.join(self.teams)})", ("rules", index, "to"))
            if rule.to == "owner" and not (rule.when and rule.when.owned):
                raise Invalid("`owned: true` in `when` for a rule that routes to the owner", ("rules", index, "when"))
            last = index == len(self.rules) - 1
            if rule.is_catch_all and not last:
                raise Invalid(
                    "a rule with conditions (only the last rule may be the catch-all: the rules after it never fire)",
                    ("rules", index, "when"),
                    got="no conditions",
                    has_got=True,
                )
        last_rule = self.rules[-1]
        if not last_rule.is_catch_all:
            raise Invalid(
                "a last rule without `when` (the catch-all that routes every lead no other rule took)",
                ("rules", len(self.rules) - 1, "when"),
            )
        if last_rule.to == "owner":
            raise Invalid(
                "a team for the catch-all (not every lead has an owner)", ("rules", len(self.rules) - 1, "to")
            )
        return self

    def team_of(self, rep_id: str) -> str | None:
        return next((name for name, team in self.teams.items() if any(r.id == rep_id for r in team.reps)), None)


# -- contact policy ----------------------------------------------------------------------------------------------

CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class Cap(Section):
    per_day: Whole | None = Field(None, ge=0)  # contacts on the person's local calendar day
    per_7_days: Whole | None = Field(None, ge=0)  # contacts on this and the 6 previous local days


class Caps(Section):
    per_channel: dict[Identifier, Cap] = replace()
    all_channels: Cap


class QuietHours(Section):
    start: Text  # HH:MM local time; quiet from start to end (across midnight when start > end)
    end: Text

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not CLOCK.match(value):
            raise ValueError("a time of day HH:MM (24-hour), e.g. '21:00'")
        return value

    def bounds(self) -> tuple[datetime.time, datetime.time]:
        return datetime.time.fromisoformat(self.start), datetime.time.fromisoformat(self.end)


class Cooldown(Section):
    days: Positive
    after: tuple[Text, ...] = Field(min_length=1)  # conversion types of marts.fct_conversions


class Action(Section):
    """What an action needs of a person before it may reach them."""

    channel: Identifier  # the activation channel it goes through (email, webhook, google_customer_match, ...)
    consent: Literal["email_marketing", "ad_personalization", "analytics"] | None = None
    stages: tuple[Text, ...] | None = None  # lifecycle stages it applies to (none: any)
    tiers: tuple[Tier, ...] | None = None  # ICP tiers it applies to (none: any)
    capped: Flag  # counts against, and is stopped by, the frequency caps
    quiet_hours: Flag  # not in the person's quiet hours
    cooldown: Flag  # not within the cool-down after a conversion


class TimeZones(Section):
    default: Text  # a person whose country gives no zone
    by_country: dict[Text, Text] = replace()  # ISO 3166 alpha-2 -> IANA zone, for countries with several zones

    @field_validator("default")
    @classmethod
    def _known(cls, value: str) -> str:
        _zone(value)
        return value

    @field_validator("by_country")
    @classmethod
    def _known_zones(cls, value: dict[str, str]) -> dict[str, str]:
        for country, zone in value.items():
            try:
                _zone(zone)
            except ValueError as exc:
                raise Invalid(str(exc), (country,)) from None
        return value


def _zone(name: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("an IANA time zone, e.g. 'Europe/Paris'") from None


class ContactSettings(Section):
    counted_channels: tuple[Identifier, ...] = Field(min_length=1)  # acknowledged sends on these count as contacts
    caps: Caps
    quiet_hours: QuietHours
    cooldown: Cooldown
    time_zones: TimeZones
    actions: dict[SnakeName, Action] = replace(min_length=1)

    @model_validator(mode="after")
    def _channels(self) -> ContactSettings:
        for channel in self.caps.per_channel:
            if channel not in self.counted_channels:
                raise Invalid(
                    f"one of counted_channels ({', '.join(self.counted_channels)})",
                    ("caps", "per_channel", channel),
                    got=channel,
                    has_got=True,
                )
        return self


# -- decisioning -----------------------------------------------------------------------------------------------


class Response(Section):
    """The prior belief about P(response | action) before the warehouse has seen any: ``prior_rate`` worth
    ``prior_weight`` observations. Learned estimates shrink toward it (and each cell toward its action)."""

    prior_rate: Share
    prior_weight: Positive


class DecisionAction(Section):
    """One candidate of the next best action: priority = P(response) × value_usd × context weight × lever."""

    value_usd: NonNegative  # what one response is worth
    cost_usd: NonNegative  # what taking the action costs (media, a rep's time)
    # what a contact spends of the person's attention (unsubscribe and fatigue risk): it must be earned too
    attention_cost_usd: NonNegative = 0.0
    lever: NonNegative = 1.0  # the business lever: > 1 pushes the action, 0 turns it off
    response: Response
    # person attribute -> value -> multiplier (an attribute or value not listed: 1)
    context_weights: dict[Identifier, dict[str, NonNegative]] = replace(default_factory=dict)
    once: Flag = False  # a person gets it at most once (a lead is handed to sales once)


class DecisionHoldout(Section):
    share: Share  # of persons, persistent: a hash of salt and customer id, never re-drawn
    salt: Text


class Learning(Section):
    window_days: Count  # a response: a conversion within this many days after the action
    conversions: tuple[Text, ...] = Field(min_length=1)  # conversion types of marts.fct_conversions
    cells: tuple[Identifier, ...] = ()  # person attributes P is learned by (each action × cell)
    # P(response | no action): what the people no action reached did, per cell; an action is worth its lift
    # over it, not the responses that would have come anyway
    baseline: Response
    # cells: the Beta posterior of each action × cell; contextual: a Bayesian logistic model per action over the
    # cell attributes (experiments/contextual.py, averaged with a model without them), each cell's P from it
    model: Literal["cells", "contextual"] = "cells"


class DecisioningSettings(Section):
    holdout: DecisionHoldout
    min_return: NonNegative  # act only when priority ≥ min_return × (cost_usd + attention_cost_usd)
    daily_budget_usd: NonNegative | None = None  # spend per decision day across actions (none: unlimited)
    daily_actions: Whole | None = Field(None, ge=0)  # actions per decision day (send volume, sales capacity)
    exploration: Literal["thompson", "mean"]  # P drawn from its posterior (explores) or its mean
    explanations_days: Count = 35  # decisions.explanations keeps this many decision days (decisions: all)
    learning: Learning
    actions: dict[SnakeName, DecisionAction] = replace(min_length=1)


class PolicySettings(DomainSettings):
    icp: IcpSettings
    routing: RoutingSettings
    contact: ContactSettings
    decisioning: DecisioningSettings

    @model_validator(mode="after")
    def _decision_actions(self) -> PolicySettings:
        for name in self.decisioning.actions:
            if name not in self.contact.actions:
                raise Invalid(
                    f"an action of contact.actions ({', '.join(self.contact.actions)})",
                    ("decisioning", "actions", name),
                    got=name,
                    has_got=True,
                )
        return self

    def content(self) -> dict[str, Any]:
        """The normalised content: every effective value, keys sorted, YAML spelling and comments gone."""
        return json.loads(json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True))

    def version(self) -> str:
        """The policy version: a hash of the normalised content (same settings, same version, whatever the file's
        layout, comments or override split)."""
        return hashlib.sha256(json.dumps(self.content(), sort_keys=True).encode()).hexdigest()[:12]
