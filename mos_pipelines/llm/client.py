"""One entry point over litellm: ``LLM.generate(task, prompt_id, facts)``.

The task's model chain comes from the config; each model is called through ``litellm.completion``
(with litellm's retries); every call lands in the ledger with tokens, $ cost from litellm's price map,
latency and outcome. The text must pass the prompt's guardrails (numbers grounded in the facts, length,
names); rejected text, or no answer from any model, falls back to the prompt's template and is flagged.
``LLM.structured(task, prompt_id, facts, parse)`` asks for a JSON answer that ``parse`` checks (blueprint intake and
planning); offline models are not asked there: the caller's deterministic path is the offline answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mos_pipelines.configuration import load_llm
from mos_pipelines.configuration.llm import LLMSettings
from mos_pipelines.llm.ledger import CallRecord, Ledger
from mos_pipelines.llm.offline import is_offline, register
from mos_pipelines.llm.prompts import Prompt, PromptError, get_prompt

log = logging.getLogger("mos_pipelines.llm")


def import_litellm() -> Any:
    """litellm, imported on first use with its local price map (no download) and our offline provider."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    register(litellm)
    return litellm


@dataclass
class Generation:
    """What a task produced: the text, who wrote it, and whether it is the flagged fallback."""

    text: str
    task: str
    prompt_id: str
    prompt_version: str
    model: str  # the model whose text was used, or "template"
    flagged: bool = False  # a model's text was rejected, or no model answered
    reason: str | None = None
    calls: list[CallRecord] = field(default_factory=list)
    gate: str | None = None  # why the registry's prompt version was not used (it failed its golden cases)

    def as_dict(self) -> dict[str, Any]:
        out = {
            "model": self.model,
            "prompt_id": self.prompt_id,
            "prompt_version": self.prompt_version,
            "flagged": self.flagged,
            "reason": self.reason,
            "calls": len(self.calls),
            "cost_usd": sum(c.cost_usd or 0.0 for c in self.calls),
        }
        if self.gate:
            out["prompt_gate"] = self.gate
        return out


@dataclass
class Structured:
    """What a structured task produced: the parsed value (None: use the deterministic path), and why not."""

    value: Any
    task: str
    model: str  # the model whose answer was used, "offline" (not asked) or "none" (no valid answer)
    reason: str | None = None
    calls: list[CallRecord] = field(default_factory=list)


class LLM:
    """Per-task models with fallbacks, a cost ledger and grounded output."""

    def __init__(self, config: LLMSettings | None = None, ledger: Ledger | None = None) -> None:
        self.config = config or load_llm()
        self.ledger = ledger or Ledger()
        self._litellm: Any = None
        self._seq = 0
        self._resolved: dict[str, Any] = {}  # prompt id -> gate.Resolved, or the PromptError it raised

    @property
    def litellm(self) -> Any:
        if self._litellm is None:
            self._litellm = import_litellm()
        return self._litellm

    def prompt(self, prompt_id: str) -> tuple[Prompt, str | None]:
        """The version of a prompt to use, and why it is not the registry's: a version whose golden cases failed
        (``ops.prompt_tests`` of the ledger's warehouse) gives way to the last passing one; ``gate.PromptBlocked``
        when there is none."""
        from mos_pipelines.llm.gate import resolve

        if prompt_id not in self._resolved:  # once per prompt for this LLM's life (one run)
            try:
                self._resolved[prompt_id] = resolve(prompt_id, self.ledger.con)
            except PromptError as exc:
                self._resolved[prompt_id] = exc
        resolved = self._resolved[prompt_id]
        if isinstance(resolved, PromptError):
            raise resolved
        return resolved.prompt, resolved.note

    def generate(self, task: str, prompt_id: str, facts: dict[str, Any], context: str | None = None) -> Generation:
        """The task's text (see the module). Raises ``gate.PromptBlocked`` when the prompt's version failed its
        golden cases and no passing version is recorded: the caller's deterministic path answers."""
        prompt, gate = self.prompt(prompt_id)
        if prompt.task != task:
            raise ValueError(f"prompt {prompt_id} belongs to task {prompt.task}, not {task}")
        models = self.config.for_task(task)
        messages = prompt.messages(facts)
        calls: list[CallRecord] = []
        problems: list[str] = []
        litellm = self.litellm  # imported (once) before any call is timed
        for attempt, model in enumerate(models.chain, start=1):
            started = time.perf_counter()
            try:
                response = litellm.completion(model=model, messages=messages, **_call_settings(models))
            except Exception as exc:  # litellm maps provider errors to many types; all mean "next model"
                detail = self._failed(exc, task, prompt, model, attempt, started, context, calls, problems)
                log.warning("LLM task %s: model %s failed (%s); trying the next one", task, model, detail)
                continue
            text = (response.choices[0].message.content or "").strip()
            usage = getattr(response, "usage", None)
            tokens_in = getattr(usage, "prompt_tokens", None)
            tokens_out = getattr(usage, "completion_tokens", None)
            cost, cost_note = self._cost(model, response)
            violations = prompt.violations(text, facts)
            if violations:
                detail = "; ".join(violations)
                calls.append(
                    self._record(
                        task, prompt, model, attempt, tokens_in, tokens_out, cost, started, "rejected", detail, context
                    )
                )
                log.warning(
                    "LLM task %s: rejected the text of %s (%s): %r; using the template", task, model, detail, text
                )
                return Generation(
                    prompt.render(facts),
                    task,
                    prompt.prompt_id,
                    prompt.version,
                    "template",
                    flagged=True,
                    reason=f"{model}: {detail}",
                    calls=calls,
                    gate=gate,
                )
            note = "; ".join(n for n in (gate, cost_note) if n) or None
            calls.append(
                self._record(task, prompt, model, attempt, tokens_in, tokens_out, cost, started, "ok", note, context)
            )
            return Generation(text, task, prompt.prompt_id, prompt.version, model, calls=calls, gate=gate)
        reason = "no model answered: " + " | ".join(problems)
        log.warning("LLM task %s: %s; using the template", task, reason)
        return Generation(
            prompt.render(facts),
            task,
            prompt.prompt_id,
            prompt.version,
            "template",
            flagged=True,
            reason=reason,
            calls=calls,
            gate=gate,
        )

    def structured(
        self, task: str, prompt_id: str, facts: dict[str, Any], parse: Callable[[Any], Any], context: str | None = None
    ) -> Structured:
        """A JSON answer checked by ``parse`` (it raises ``ValueError`` on an answer that does not fit). Offline models
        are not asked: for a structured task the caller's deterministic path is the offline answer. An answer that
        is not JSON or does not fit is recorded as rejected and the next model is tried. A prompt version that failed
        its golden cases with no passing version recorded is not asked (``model`` "blocked")."""
        from mos_pipelines.llm.gate import PromptBlocked

        if get_prompt(prompt_id).task != task:
            raise ValueError(f"prompt {prompt_id} belongs to task {get_prompt(prompt_id).task}, not {task}")
        models = self.config.for_task(task)
        chain = [m for m in models.chain if not is_offline(m)]
        if not chain:
            return Structured(
                None, task, "offline", f"task {task} uses the offline model: the deterministic path answers"
            )
        try:
            prompt, gate = self.prompt(prompt_id)
        except PromptBlocked as exc:
            log.warning("LLM task %s: %s", task, exc)
            return Structured(None, task, "blocked", str(exc))
        messages = prompt.messages(facts)
        calls: list[CallRecord] = []
        problems: list[str] = []
        litellm = self.litellm
        for attempt, model in enumerate(chain, start=1):
            started = time.perf_counter()
            try:
                response = litellm.completion(
                    model=model,
                    messages=messages,
                    response_format={"type": "json_object"},
                    drop_params=True,
                    **_call_settings(models),
                )
            except Exception as exc:  # litellm maps provider errors to many types; all mean "next model"
                self._failed(exc, task, prompt, model, attempt, started, context, calls, problems)
                continue
            text = (response.choices[0].message.content or "").strip()
            usage = getattr(response, "usage", None)
            cost, cost_note = self._cost(model, response)
            tokens = (getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None))
            note: str | None
            try:
                value = parse(json.loads(text))
            except (ValueError, TypeError) as exc:  # json.JSONDecodeError and pydantic's ValidationError included
                status, note = "rejected", str(exc).replace("\n", " ")[:500]
            else:
                status, note = "ok", "; ".join(n for n in (gate, cost_note) if n) or None
            calls.append(self._record(task, prompt, model, attempt, *tokens, cost, started, status, note, context))
            if status == "ok":
                return Structured(value, task, model, None, calls)
            problems.append(f"{model}: {note}")
            log.warning("LLM task %s: rejected the answer of %s (%s)", task, model, note)
        return Structured(None, task, "none", "no model gave a valid answer: " + " | ".join(problems), calls)

    def _failed(
        self,
        exc: Exception,
        task: str,
        prompt: Prompt,
        model: str,
        attempt: int,
        started: float,
        context: str | None,
        calls: list[CallRecord],
        problems: list[str],
    ) -> str:
        """A model that raised: its call recorded as an error and noted among the problems; the detail returned."""
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        calls.append(self._record(task, prompt, model, attempt, None, None, None, started, "error", detail, context))
        problems.append(f"{model}: {detail}")
        return detail

    def _cost(self, model: str, response: Any) -> tuple[float | None, str | None]:
        """$ of a call from litellm's price map; 0 for the offline provider; None when the model is unpriced."""
        if is_offline(model):
            return 0.0, None
        try:
            return float(self.litellm.completion_cost(completion_response=response, model=model)), None
        except Exception as exc:
            return None, f"cost unknown: {type(exc).__name__} (model not in litellm's price map)"

    def _record(
        self,
        task: str,
        prompt: Prompt,
        model: str,
        attempt: int,
        tokens_in: int | None,
        tokens_out: int | None,
        cost: float | None,
        started: float,
        outcome: str,
        detail: str | None,
        context: str | None,
    ) -> CallRecord:
        self._seq += 1
        now = pd.Timestamp.now(tz="UTC")
        call_id = hashlib.sha256(f"{now.isoformat()}:{id(self)}:{self._seq}".encode()).hexdigest()[:20]
        record = CallRecord(
            call_id,
            now,
            task,
            prompt.prompt_id,
            prompt.version,
            model,
            attempt,
            tokens_in,
            tokens_out,
            cost,
            (time.perf_counter() - started) * 1000.0,
            outcome,
            detail,
            context,
        )
        self.ledger.record(record)
        return record


def _call_settings(models: Any) -> dict[str, Any]:
    """What every completion call passes from a task's model settings (temperature, limits, retries, extras)."""
    return {
        "temperature": models.temperature,
        "max_tokens": models.max_tokens,
        "num_retries": models.num_retries,
        "timeout": models.timeout_s,
        **models.extra,
    }
