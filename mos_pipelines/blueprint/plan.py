"""The plan: a DAG of workflow steps from a catalogue of step types that run on what the project already has, each
with parameters, a budget and an expected outcome; the rule-based planner that builds one from the context; and the
checks ``mos blueprint validate`` runs (schema, references, budget sums to the total, dependencies acyclic).

Step ids are stable (derived from the step type and its subject), so the execution slice can key step runs and
their $ cost on them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mos_pipelines.blueprint.context import Fact
from mos_pipelines.blueprint.goal import Goal
from mos_pipelines.blueprint.objective import Objective
from mos_pipelines.configuration.base import DomainSettings, Section
from mos_pipelines.configuration.blueprint import BlueprintSettings

BUDGET_TOLERANCE_USD = 0.01


# -- step parameters, one model per step type ---------------------------------------------------------------------


class StepParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudienceParams(StepParams):
    table: str
    where: str  # SQL predicate over the table: the segment
    purpose: str | None = None  # a consent purpose every member must have


class LookalikeParams(StepParams):
    audience: str  # ml.lookalike_scores.audience
    top_percent: int = Field(ge=1, le=100)  # tiers up to this top-N % band


class AdSyncParams(StepParams):
    destinations: tuple[str, ...] = Field(min_length=1)  # config/activation.yaml destinations
    purpose: str = "ad_personalization"


class ChannelBudgetParams(StepParams):
    channel: str
    daily_usd: float = Field(ge=0)


class NurtureParams(StepParams):
    channel: str
    sends_per_person: int = Field(ge=1)
    variant_policy: str = "bandit"  # variants chosen by experiments.bandit_allocations
    experiments: tuple[str, ...] = ()  # experiments whose winners seed the copy


class CrmSyncParams(StepParams):
    destination: str


class CheckpointParams(StepParams):
    weekday: str
    with_insights: bool = True


class ReserveParams(StepParams):
    reason: str


@dataclass(frozen=True)
class StepType:
    name: str
    description: str
    params: type[StepParams]


CATALOGUE: dict[str, StepType] = {
    t.name: t
    for t in (
        StepType(
            "audience", "customers matching a predicate over the segment table (and a consent purpose)", AudienceParams
        ),
        StepType(
            "lookalike_tier",
            "lookalike customers up to a top-N % tier (ml.lookalike_scores) added to an audience",
            LookalikeParams,
        ),
        StepType(
            "ad_audience_sync", "the audience synced to ad destinations (consent ad_personalization)", AdSyncParams
        ),
        StepType("channel_budget", "spend on one channel: its share of the budget split", ChannelBudgetParams),
        StepType(
            "nurture_email", "nurture emails to the consented audience, variants chosen by the bandit", NurtureParams
        ),
        StepType("crm_sync", "lifecycle stage and routing synced to the CRM", CrmSyncParams),
        StepType("checkpoint", "weekly checkpoint: progress against the goal, new insights, re-plan", CheckpointParams),
        StepType("reserve", "budget held back (the channels cannot absorb it within the horizon)", ReserveParams),
    )
}


# -- the file's models --------------------------------------------------------------------------------------------


class Expected(Section):
    metric: str
    value: float
    lower: float | None = None
    upper: float | None = None
    note: str | None = None


class Step(Section):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: str
    title: str
    depends_on: tuple[str, ...] = ()
    budget_usd: float = Field(ge=0)
    params: dict[str, Any] = Field(default_factory=dict)
    expected: Expected | None = None


class Approval(Section):
    by: str
    at: str
    content_hash: str


class Planner(Section):
    kind: str  # rule_based | llm
    notes: tuple[str, ...] = ()


class Blueprint(DomainSettings):
    """One blueprint file (``$MOS_HOME/blueprints/<id>.yaml``)."""

    blueprint_id: str
    revision: int = Field(ge=1)
    objective: Objective
    as_of: str | None
    budget_usd: float = Field(gt=0)
    goal: dict[str, Any]
    context_file: str | None = None
    planner: Planner
    steps: tuple[Step, ...] = Field(min_length=1)
    approval: Approval | None = None

    def content(self) -> dict[str, Any]:
        """What approval covers: everything but the approval and the revision number."""
        return self.model_dump(mode="json", exclude={"approval", "revision"})

    def content_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.content(), sort_keys=True).encode()).hexdigest()

    def status(self) -> str:
        if self.approval is None:
            return "draft"
        return "approved" if self.approval.content_hash == self.content_hash() else "edited after approval"


# -- validation ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanProblem:
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.key}{f' (line {self.line})' if self.line else ''}: {self.message}"


def find_cycle(steps: tuple[Step, ...]) -> list[str] | None:
    """A dependency cycle as the ids along it (first id repeated at the end), or None."""
    edges = {s.id: [d for d in s.depends_on] for s in steps}
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, []):
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for step in sorted(edges):
        if state.get(step) is None:
            found = visit(step)
            if found:
                return found
    return None


def check(bp: Blueprint, lines: dict[tuple, int] | None = None) -> list[PlanProblem]:
    """Every problem of a (schema-valid) blueprint: step ids, types and parameters, references, cycles, budget."""
    lines = lines or {}
    problems: list[PlanProblem] = []
    ids = [s.id for s in bp.steps]
    seen: set[str] = set()
    for i, step in enumerate(bp.steps):
        at = ("steps", i)
        if step.id in seen:
            problems.append(
                PlanProblem(f"steps[{i}].id", f"each step id once ({step.id!r} is used twice)", lines.get(at + ("id",)))
            )
        seen.add(step.id)
        kind = CATALOGUE.get(step.type)
        if kind is None:
            problems.append(
                PlanProblem(
                    f"steps[{i}].type", f"one of {', '.join(CATALOGUE)}; got {step.type!r}", lines.get(at + ("type",))
                )
            )
        else:
            try:
                kind.params.model_validate(step.params)
            except ValidationError as exc:
                for e in exc.errors():
                    where = ".".join(str(x) for x in e["loc"])
                    problems.append(
                        PlanProblem(
                            f"steps[{i}].params.{where}",
                            f"{e['msg']} (step type {step.type})",
                            lines.get(at + ("params", *e["loc"][:1])) or lines.get(at + ("params",)),
                        )
                    )
        for j, dep in enumerate(step.depends_on):
            if dep not in ids:
                problems.append(
                    PlanProblem(
                        f"steps[{i}].depends_on[{j}]",
                        f"unknown step reference {dep!r}; steps are: {', '.join(ids)}",
                        lines.get(at + ("depends_on", j)),
                    )
                )
            elif dep == step.id:
                problems.append(
                    PlanProblem(
                        f"steps[{i}].depends_on[{j}]",
                        f"step {step.id!r} depends on itself",
                        lines.get(at + ("depends_on", j)),
                    )
                )
    cycle = find_cycle(bp.steps)
    if cycle and len(cycle) > 2:
        first = ids.index(cycle[0])
        problems.append(
            PlanProblem(
                f"steps[{first}].depends_on",
                f"dependencies must not form a cycle: {' → '.join(cycle)}",
                lines.get(("steps", first, "depends_on")),
            )
        )
    total = sum(s.budget_usd for s in bp.steps)
    if abs(total - bp.budget_usd) > BUDGET_TOLERANCE_USD:
        parts = ", ".join(f"{s.id} ${s.budget_usd:,.2f}" for s in bp.steps if s.budget_usd)
        gap = bp.budget_usd - total
        problems.append(
            PlanProblem(
                "budget_usd",
                f"the steps' budgets add up to ${total:,.2f} ({parts or 'none'}) "
                f"but budget_usd is ${bp.budget_usd:,.2f}: "
                f"{'$' + format(gap, ',.2f') + ' unassigned' if gap > 0 else '$' + format(-gap, ',.2f') + ' over'}",
                lines.get(("budget_usd",)),
            )
        )
    return problems


# -- the rule-based planner ---------------------------------------------------------------------------------------


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def rule_based_plan(
    objective: Objective, goal: Goal, facts: dict[str, Fact], settings: BlueprintSettings
) -> tuple[list[Step], list[str]]:
    """Steps from what the context says this business has, and notes on what was left out and why."""
    notes: list[str] = []
    steps: list[Step] = []
    measure = facts["channel_rates"].value["measure"] if facts["channel_rates"].available else "outcomes"
    table = settings.segments.table
    where = (
        " and ".join(f"{f.dimension} in ({', '.join(_sql_literal(v) for v in f.values)})" for f in objective.segment)
        or "true"
    )
    metric = settings.metrics[objective.metric]
    size = facts["segment_size"].value if facts["segment_size"].available else {}
    steps.append(
        Step(
            id="segment_audience",
            type="audience",
            title=f"Audience: {objective.segment_text()}, not yet {objective.metric}",
            budget_usd=0,
            params={"table": table, "where": f"({where}) and not coalesce(({metric.where}), false)"},
            expected=Expected(
                metric="customers",
                value=float(size.get("customers", 0) - size.get("paying", 0)) if size else 0.0,
                note=None if size else f"segment size {facts['segment_size'].reason}",
            ),
        )
    )
    audience_ids = ["segment_audience"]

    pool = facts["lookalike_pool"]
    top = settings.plan.lookalike_top_percent
    if pool.available and pool.value["audiences"]:

        def within(tiers: dict[str, int]) -> int:
            return sum(n for t, n in tiers.items() if int(t) <= top)

        audience, tiers = max(pool.value["audiences"].items(), key=lambda kv: (within(kv[1]), kv[0]))
        n = within(tiers)
        if n > 0:
            steps.append(
                Step(
                    id="lookalike_pool",
                    type="lookalike_tier",
                    title=f"Lookalikes of {audience}, top {top} %",
                    depends_on=("segment_audience",),
                    budget_usd=0,
                    params={"audience": audience, "top_percent": top},
                    expected=Expected(metric="customers", value=float(n)),
                )
            )
            audience_ids.append("lookalike_pool")
        else:
            notes.append(
                f"no lookalike step: no scored customer of the segment in the top {top} % of any audience "
                f"(tiers present: {', '.join(sorted({t for v in pool.value['audiences'].values() for t in v}, key=int))})"
            )
    else:
        notes.append(f"no lookalike step: {pool.reason or 'no scored audience'}")

    by_channel = {a.channel: a for a in goal.allocations if a.budget_usd > 0}
    paid = [a for c, a in sorted(by_channel.items()) if c != settings.plan.email_channel]
    reach_ads = (size.get("reachable_not_paying") or {}).get("ad_personalization") if size else None
    sync_id = None
    if paid and settings.plan.ad_destinations and (reach_ads is None or reach_ads > 0):
        sync_id = "ad_audience_sync"
        steps.append(
            Step(
                id=sync_id,
                type="ad_audience_sync",
                title="Sync the audience to ad platforms",
                depends_on=tuple(audience_ids),
                budget_usd=0,
                params={"destinations": list(settings.plan.ad_destinations)},
                expected=None
                if reach_ads is None
                else Expected(
                    metric="customers synced",
                    value=float(reach_ads),
                    note="segment customers not yet paying who consent to ad personalisation"
                    + (", plus consenting lookalikes" if "lookalike_pool" in audience_ids else ""),
                ),
            )
        )
    elif paid:
        notes.append(
            "no ad-audience sync: no customer of the segment who is not yet paying consents to ad personalisation"
            if reach_ads == 0
            else "no ad-audience sync: no ad destination in config/blueprint.yaml"
        )
    horizon = objective.horizon_days
    for a in paid:
        steps.append(
            Step(
                id=f"channel_budget_{_slug(a.channel)}",
                type="channel_budget",
                title=f"Spend on {a.channel}",
                depends_on=(sync_id,) if sync_id else ("segment_audience",),
                budget_usd=a.budget_usd,
                params={"channel": a.channel, "daily_usd": round(a.budget_usd / horizon, 2)},
                expected=Expected(
                    metric=measure, value=round(a.expected, 1), lower=round(a.lower, 1), upper=round(a.upper, 1)
                ),
            )
        )
    email = by_channel.get(settings.plan.email_channel)
    winners = facts["bandit_winners"].value["winners"] if facts["bandit_winners"].available else []
    if email is not None:
        steps.append(
            Step(
                id="nurture_email",
                type="nurture_email",
                title="Nurture emails, bandit-chosen variants",
                depends_on=("segment_audience",),
                budget_usd=email.budget_usd,
                params={
                    "channel": email.channel,
                    "sends_per_person": settings.plan.nurture_sends_per_person,
                    "variant_policy": "bandit",
                    "experiments": sorted({w["experiment_id"] for w in winners}),
                },
                expected=Expected(
                    metric=measure,
                    value=round(email.expected, 1),
                    lower=round(email.lower, 1),
                    upper=round(email.upper, 1),
                ),
            )
        )
    else:
        notes.append(
            f"no nurture step: the {settings.plan.email_channel} channel has no measured cost in the window "
            "or no emailable customer of the segment"
        )
    if settings.plan.crm_destination:
        steps.append(
            Step(
                id="crm_routing",
                type="crm_sync",
                title="Lifecycle stage and routing to the CRM",
                depends_on=("segment_audience",),
                budget_usd=0,
                params={"destination": settings.plan.crm_destination},
            )
        )
    if goal.unspent_usd > 0.005:
        steps.append(
            Step(
                id="reserve",
                type="reserve",
                title="Budget held back",
                budget_usd=goal.unspent_usd,
                params={
                    "reason": f"the channels absorb at most {settings.goal.max_spend_multiple:g}× their "
                    f"trailing daily cost within {horizon} days"
                },
            )
        )
    steps.append(
        Step(
            id="weekly_checkpoint",
            type="checkpoint",
            title="Weekly checkpoint against the goal",
            depends_on=tuple(s.id for s in steps),
            budget_usd=0,
            params={"weekday": settings.plan.checkpoint_weekday, "with_insights": True},
            expected=Expected(
                metric=objective.metric,
                value=float(goal.baseline + round(goal.expected_gain)),
                lower=float(goal.baseline + round(goal.gain_lower)),
                upper=float(goal.baseline + round(goal.gain_upper)),
                note=f"goal {goal.target_value:,} ({goal.status})",
            ),
        )
    )
    # cent rounding of the allocations must not break "the budget adds up"
    gap = round(objective.budget_usd - sum(s.budget_usd for s in steps), 2)
    if gap and abs(gap) <= 0.05:
        i = max(range(len(steps)), key=lambda k: steps[k].budget_usd)
        steps[i] = steps[i].model_copy(update={"budget_usd": round(steps[i].budget_usd + gap, 2)})
    return steps, notes


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")
    return out or "channel"
