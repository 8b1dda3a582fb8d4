"""The LLM path of intake and planning, used when ``config/llm.yaml`` points ``blueprint_intake`` or
``blueprint_planning`` at a model (the default, ``mos-offline/...``, means the deterministic parser and the
rule-based planner). The model answers JSON; an answer is used only when it fits: an objective naming only metrics,
dimension values and channels the warehouse has, a plan that passes the same checks as ``mos blueprint validate``.
Anything else is recorded as rejected in ``ops.llm_calls`` and the deterministic path answers, with the reason kept
in the blueprint's planner notes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import Field

from mos_pipelines.blueprint.context import Fact
from mos_pipelines.blueprint.objective import (
    DAYS_PER_MONTH,
    Constraints,
    Model,
    Objective,
    SegmentFilter,
    Target,
    Vocabulary,
)
from mos_pipelines.blueprint.plan import CATALOGUE, Blueprint, Step, check
from mos_pipelines.configuration.blueprint import BlueprintSettings
from mos_pipelines.configuration.llm import LLMSettings
from mos_pipelines.llm.offline import is_offline

TASKS = ("blueprint_intake", "blueprint_planning")


def wants_llm(config: LLMSettings) -> bool:
    """Whether ``config/llm.yaml`` points a blueprint task at a model other than the offline one."""
    return any(not is_offline(m) for task in TASKS for m in config.for_task(task).chain)


class ObjectiveAnswer(Model):
    """What the intake model returns."""

    metric: str
    segment: tuple[SegmentFilter, ...] = ()
    budget_usd: float | None = Field(None, gt=0)
    horizon_months: float | None = Field(None, gt=0)
    target: Target | None = None
    constraints: Constraints = Constraints()


class PlanAnswer(Model):
    """What the planning model returns."""

    steps: tuple[Step, ...] = Field(min_length=1)


def intake_facts(
    text: str, settings: BlueprintSettings, vocabulary: Vocabulary, example: Objective | None
) -> dict[str, Any]:
    sample = (
        ObjectiveAnswer(
            metric=example.metric,
            segment=example.segment,
            budget_usd=example.budget_usd,
            horizon_months=example.horizon_months,
            target=example.target,
            constraints=example.constraints,
        )
        if example is not None
        else ObjectiveAnswer(metric=next(iter(settings.metrics)), budget_usd=10000.0, horizon_months=3.0)
    )
    return {
        "objective": text,
        "metrics": {name: m.description for name, m in settings.metrics.items()},
        "dimensions": {d: list(v) for d, v in vocabulary.dimension_values.items()},
        "channels": list(vocabulary.channels),
        "schema": ObjectiveAnswer.model_json_schema(),
        "example": json.dumps(sample.model_dump(mode="json"), sort_keys=True),
    }


def intake_parser(
    text: str, settings: BlueprintSettings, vocabulary: Vocabulary, budget_usd: float | None, months: float | None
) -> Callable[[Any], Objective]:
    """Checks an intake answer against the config and the warehouse's values; the options win over the answer."""

    def parse(data: Any) -> Objective:
        answer = ObjectiveAnswer.model_validate(data)
        if answer.metric not in settings.metrics:
            raise ValueError(f"metric {answer.metric!r} is not one of {', '.join(settings.metrics)}")
        for f in answer.segment:
            have = vocabulary.dimension_values.get(f.dimension)
            if f.dimension not in settings.segments.dimensions or have is None:
                raise ValueError(f"segment dimension {f.dimension!r} is not one the warehouse has")
            unknown = [v for v in f.values if v not in have]
            if unknown:
                raise ValueError(f"{f.dimension} values {unknown} are not in the warehouse ({', '.join(have)})")
        unknown_channels = [c for c in answer.constraints.excluded_channels if c not in vocabulary.channels]
        if unknown_channels:
            raise ValueError(f"excluded channels {unknown_channels} are not in the warehouse")
        budget = budget_usd if budget_usd is not None else answer.budget_usd
        horizon = months if months is not None else answer.horizon_months
        if budget is None or horizon is None:
            raise ValueError("the answer has no budget or no horizon")
        segment = tuple(
            sorted(
                (SegmentFilter(dimension=f.dimension, values=tuple(sorted(set(f.values)))) for f in answer.segment),
                key=lambda f: f.dimension,
            )
        )
        return Objective(
            text=" ".join(text.split()),
            metric=answer.metric,
            segment=segment,
            horizon_months=round(horizon, 4),
            horizon_days=max(1, round(horizon * DAYS_PER_MONTH)),
            budget_usd=round(float(budget), 2),
            target=answer.target,
            constraints=answer.constraints,
        )

    return parse


def planning_facts(base: Blueprint, facts: dict[str, Fact]) -> dict[str, Any]:
    return {
        "objective": base.objective.normalised(),
        "budget_usd": base.budget_usd,
        "goal": {k: v for k, v in base.goal.items() if k != "arithmetic"},
        "context": {name: (f.value if f.available else f"not available: {f.reason}") for name, f in facts.items()},
        "catalogue": {
            name: {"description": t.description, "params": t.params.model_json_schema()}
            for name, t in CATALOGUE.items()
        },
        "schema": PlanAnswer.model_json_schema(),
        "example": json.dumps({"steps": [s.model_dump(mode="json") for s in base.steps]}, sort_keys=True),
    }


def plan_parser(base: Blueprint) -> Callable[[Any], tuple[Step, ...]]:
    """Checks a planning answer with the checks of ``mos blueprint validate`` (budget total, references, cycles,
    step types and parameters)."""

    def parse(data: Any) -> tuple[Step, ...]:
        answer = PlanAnswer.model_validate(data)
        problems = check(base.model_copy(update={"steps": answer.steps}))
        if problems:
            raise ValueError("; ".join(str(p) for p in problems))
        return answer.steps

    return parse
