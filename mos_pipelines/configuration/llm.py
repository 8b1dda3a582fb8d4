"""``config/llm.yaml``: which model writes what, per task, with a fallback chain. Read by ``mos_pipelines.llm``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, field_validator

from mos_pipelines.configuration.base import Count, DomainSettings, Invalid, NonNegative, Positive, Section, Text, Whole
from mos_pipelines.configuration.errors import ConfigError, phrased

TASKS = (
    "insight_phrasing",
    "email_copy",
    "question_answering",
    "blueprint_intake",
    "blueprint_planning",
    "note_extraction",
)


class ModelDefaults(Section):
    num_retries: Whole = Field(ge=0)  # litellm retries a failed call this many times before the next model
    timeout_s: Positive
    temperature: NonNegative
    max_tokens: Count


class TaskSpec(Section):
    model: Text  # any provider string litellm knows, or mos-offline/<name>
    fallbacks: tuple[Text, ...]
    num_retries: Whole | None = Field(None, ge=0)  # unset: defaults.num_retries (and so on)
    timeout_s: Positive | None = None
    temperature: NonNegative | None = None
    max_tokens: Count | None = None
    extra: dict[str, Any] = Field(default_factory=dict)  # passed to litellm.completion as is


@dataclass(frozen=True)
class TaskModels:
    """The model chain of one task with its call settings: ``model`` first, then each fallback in order."""

    task: str
    model: str
    fallbacks: tuple[str, ...]
    num_retries: int
    timeout_s: float
    temperature: float
    max_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chain(self) -> tuple[str, ...]:
        return (self.model, *self.fallbacks)


class LLMSettings(DomainSettings):
    defaults: ModelDefaults
    tasks: dict[str, TaskSpec]

    @field_validator("tasks")
    @classmethod
    def _every_task(cls, value: dict[str, TaskSpec]) -> dict[str, TaskSpec]:
        for task in TASKS:
            if task not in value:
                raise Invalid(f"a model for every task ({', '.join(TASKS)})", (task,))
        return value

    def for_task(self, task: str) -> TaskModels:
        spec = self.tasks.get(task)
        if spec is None:
            raise ConfigError(
                self.source or "config/llm.yaml",
                f"tasks.{task}",
                f"a model for task {task!r} (known tasks: {', '.join(sorted(self.tasks))})",
                phrased("no such task"),
            )
        d = self.defaults

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        return TaskModels(
            task=task,
            model=spec.model.strip(),
            fallbacks=tuple(f.strip() for f in spec.fallbacks),
            num_retries=pick(spec.num_retries, d.num_retries),
            timeout_s=pick(spec.timeout_s, d.timeout_s),
            temperature=pick(spec.temperature, d.temperature),
            max_tokens=pick(spec.max_tokens, d.max_tokens),
            extra=dict(spec.extra),
        )
