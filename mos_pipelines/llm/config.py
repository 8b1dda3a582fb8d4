"""Which model writes what: ``config/llm.yaml`` (or ``$MOS_LLM_CONFIG``), validated."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mos_pipelines.configfile import read_mapping
from mos_pipelines.settings import PROJECT_ROOT

DEFAULT_CONFIG = PROJECT_ROOT / "config" / "llm.yaml"
TASKS = ("insight_phrasing", "email_copy", "question_answering")


class LLMConfigError(ValueError):
    """The LLM config is unreadable or invalid; the message names the file and the key."""


@dataclass(frozen=True)
class TaskModels:
    """The model chain of one task: ``model`` first, then each fallback in order."""

    task: str
    model: str
    fallbacks: tuple[str, ...] = ()
    num_retries: int = 2
    timeout_s: float = 30.0
    temperature: float = 0.0
    max_tokens: int = 300
    extra: dict[str, Any] = field(default_factory=dict)  # passed to litellm.completion as is

    @property
    def chain(self) -> tuple[str, ...]:
        return (self.model, *self.fallbacks)


@dataclass(frozen=True)
class LLMConfig:
    source: Path
    tasks: dict[str, TaskModels]

    def for_task(self, task: str) -> TaskModels:
        if task not in self.tasks:
            raise LLMConfigError(f"LLM config {self.source}: no task '{task}' (known: {', '.join(sorted(self.tasks))})")
        return self.tasks[task]


def config_path() -> Path:
    return Path(os.environ.get("MOS_LLM_CONFIG", DEFAULT_CONFIG))


def load_config(path: Path | None = None) -> LLMConfig:
    """Read and validate the LLM config (default: $MOS_LLM_CONFIG, else config/llm.yaml)."""
    file = Path(path) if path is not None else config_path()
    data = read_mapping(file, "LLM config", LLMConfigError)
    unknown = set(data) - {"defaults", "tasks"}
    if unknown:
        raise LLMConfigError(f"LLM config {file}: unknown key '{sorted(unknown)[0]}' (expected defaults, tasks)")
    defaults = data.get("defaults") or {}
    tasks = data.get("tasks") or {}
    if not isinstance(defaults, dict) or not isinstance(tasks, dict):
        raise LLMConfigError(f"LLM config {file}: 'defaults' and 'tasks' must be mappings")
    parsed = {}
    for name, spec in tasks.items():
        parsed[name] = _task(file, name, spec, defaults)
    missing = [t for t in TASKS if t not in parsed]
    if missing:
        raise LLMConfigError(f"LLM config {file}: key 'tasks.{missing[0]}' missing (every task needs a model)")
    return LLMConfig(source=file, tasks=parsed)


def _task(file: Path, name: str, spec: Any, defaults: dict[str, Any]) -> TaskModels:
    at = f"LLM config {file}: key 'tasks.{name}'"
    if not isinstance(spec, dict):
        raise LLMConfigError(f"{at}: expected a mapping with 'model'")
    allowed = {"model", "fallbacks", "num_retries", "timeout_s", "temperature", "max_tokens", "extra"}
    unknown = set(spec) - allowed
    if unknown:
        raise LLMConfigError(f"{at}.{sorted(unknown)[0]}: unknown key (expected one of {', '.join(sorted(allowed))})")
    model = spec.get("model")
    if not isinstance(model, str) or not model.strip():
        raise LLMConfigError(f"{at}.model: expected a litellm model string, got {model!r}")
    fallbacks = spec.get("fallbacks") or []
    if not isinstance(fallbacks, list) or not all(isinstance(f, str) and f.strip() for f in fallbacks):
        raise LLMConfigError(f"{at}.fallbacks: expected a list of model strings, got {fallbacks!r}")
    merged = {**defaults, **{k: v for k, v in spec.items() if k not in ("model", "fallbacks")}}
    extra = merged.get("extra") or {}
    if not isinstance(extra, dict):
        raise LLMConfigError(f"{at}.extra: expected a mapping of litellm.completion arguments")
    try:
        return TaskModels(
            task=name,
            model=model.strip(),
            fallbacks=tuple(f.strip() for f in fallbacks),
            num_retries=int(merged.get("num_retries", 2)),
            timeout_s=float(merged.get("timeout_s", 30)),
            temperature=float(merged.get("temperature", 0)),
            max_tokens=int(merged.get("max_tokens", 300)),
            extra=dict(extra),
        )
    except (TypeError, ValueError) as exc:
        raise LLMConfigError(f"{at}: {exc}") from exc
