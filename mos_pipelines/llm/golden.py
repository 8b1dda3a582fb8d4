"""Golden cases of every prompt, and the comparison of the current prompts with a proposed change.

A prompt's golden cases (``config/prompts/golden/<prompt_id>.yaml``) are facts in and expectations out: every
number grounded in the facts (``grounding.check_grounding``), the facts' ``must_mention`` names and the case's
``required`` text present, ``forbidden`` claims absent, length bounds, one line, valid JSON with given keys.

What a case's output is, offline: for a task whose model is the offline one (``mos-offline/...``) or with
``--model template``, the prompt's template rendered from the facts (what the offline provider writes, and the
fallback of every task), so a changed template is judged exactly. With a model (``--model MODEL`` or the task's
configured one) each case's answer is that model's, asked through litellm with the messages ``LLM.generate``
sends; tests give such a model as a litellm custom provider or ``mock_response``, never a network model.

A proposed change (``--proposed FILE``) overrides the instructions, template or guardrails of prompts by id; its
version is the same hash as the registry's, so what is tested is what would run.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from mos_pipelines.configuration.base import Count, DomainSettings, Flag, Invalid, Section, Text, Whole, unique
from mos_pipelines.configuration.errors import ConfigError, Problem, phrased
from mos_pipelines.configuration.llm import LLMSettings
from mos_pipelines.configuration.loader import load_documents, read_document
from mos_pipelines.llm.grounding import check_grounding
from mos_pipelines.llm.offline import is_offline
from mos_pipelines.llm.prompts import PROMPTS, Prompt, PromptError, known_rule
from mos_pipelines.settings import PROJECT_ROOT

GOLDEN_DIR = PROJECT_ROOT / "config" / "prompts" / "golden"
TEMPLATE = "template"  # the answer source that renders the prompt's template


# -- the files ---------------------------------------------------------------------------------------------------


class Expect(Section):
    """What a case's output must satisfy (unset: the file's ``defaults``, else off)."""

    grounded: Flag | None = None  # every number in the output is one of the facts (rounding allowed)
    required: tuple[Text, ...] | None = None  # each appears (case-insensitive); facts.must_mention always counts
    forbidden: tuple[Text, ...] | None = None  # none appears (case-insensitive)
    forbidden_patterns: tuple[Text, ...] | None = None  # no regular expression matches
    min_chars: Whole | None = Field(None, ge=0)
    max_chars: Count | None = None
    single_line: Flag | None = None
    json_object: Flag | None = None  # the output is one JSON object
    json_keys: tuple[Text, ...] | None = None  # ... with these top-level keys

    @field_validator("forbidden_patterns")
    @classmethod
    def _patterns(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for index, pattern in enumerate(value or ()):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise Invalid(f"a regular expression ({exc})", (index,)) from None
        return value

    def over(self, defaults: Expect) -> Expect:
        """These expectations, each unset one taken from ``defaults``."""
        return Expect(**{k: (v if v is not None else getattr(defaults, k)) for k, v in self})


class Case(Section):
    id: Text
    description: str | None = None
    facts: dict[str, Any]
    expect: Expect = Expect()


class GoldenFile(DomainSettings):
    """``config/prompts/golden/<prompt_id>.yaml``."""

    defaults: Expect = Expect()
    cases: tuple[Case, ...] = Field(min_length=1)

    @field_validator("cases")
    @classmethod
    def _unique(cls, value: tuple[Case, ...]) -> tuple[Case, ...]:
        return unique(value, "id", "a case id")


@dataclass(frozen=True)
class GoldenCase:
    prompt_id: str
    case_id: str
    facts: dict[str, Any]
    expect: Expect
    file: Path


def load_golden(directory: Path = GOLDEN_DIR) -> dict[str, list[GoldenCase]]:
    """Every prompt's golden cases, by prompt id (a file per prompt; its name is the prompt id)."""
    found: dict[str, list[GoldenCase]] = {}
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ConfigError(directory, "", "golden case files <prompt_id>.yaml", phrased("no such file"))
    for file in files:
        prompt_id = file.stem
        if prompt_id not in PROMPTS:
            raise ConfigError(
                file, "", f"a file named for a prompt id ({', '.join(sorted(PROMPTS))})", phrased(file.name)
            )
        golden = load_documents(GoldenFile, [read_document(file)])
        found[prompt_id] = [
            GoldenCase(prompt_id, c.id, c.facts, c.expect.over(golden.defaults), file) for c in golden.cases
        ]
    return found


class PromptChange(Section):
    instructions: Text | None = None
    template: Text | None = None
    guardrails: tuple[Text, ...] | None = None

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                list(string.Formatter().parse(value))
            except ValueError as exc:
                raise ValueError(f"a str.format template over the facts ({exc})") from None
        return value

    @field_validator("guardrails")
    @classmethod
    def _guardrails(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for index, rule in enumerate(value or ()):
            if not known_rule(rule):
                raise Invalid(
                    "a guardrail: numbers_grounded, max_chars:N, must_mention, no_urls, single_line or json_object",
                    (index,),
                )
        return value

    @model_validator(mode="after")
    def _something(self) -> PromptChange:
        if self.instructions is None and self.template is None and self.guardrails is None:
            raise ValueError("at least one of instructions, template, guardrails")
        return self


class ProposedFile(DomainSettings):
    """A proposed change: ``prompts: {<prompt_id>: {instructions, template, guardrails}}``."""

    prompts: dict[str, PromptChange] = Field(min_length=1)


def load_proposed(file: Path) -> dict[str, Prompt]:
    """The prompts a proposed file changes, each the registry's prompt with the file's fields over it. Every problem
    (an unknown prompt id, a bad template or guardrail, an unknown key) in one ``ConfigError``."""
    document = read_document(file)
    prompts = document.data.get("prompts")
    unknown = [
        Problem(
            str(file),
            f"prompts.{prompt_id}",
            f"a prompt id ({', '.join(sorted(PROMPTS))})",
            phrased(f"the unknown prompt {prompt_id!r}"),
            document.lines.get(("prompts", prompt_id)),
        )
        for prompt_id in (prompts if isinstance(prompts, dict) else {})
        if prompt_id not in PROMPTS
    ]
    try:
        proposed = load_documents(ProposedFile, [document])
    except ConfigError as exc:
        raise ConfigError.of(unknown + list(exc.problems)) from None
    if unknown:
        raise ConfigError.of(unknown)
    out: dict[str, Prompt] = {}
    for prompt_id, change in proposed.prompts.items():
        fields = {k: v for k, v in change if v is not None}
        out[prompt_id] = replace(PROMPTS[prompt_id], **fields)
    return out


# -- judging one output ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    rule: str  # grounded, required, forbidden, min_chars, max_chars, single_line, json, json_keys, render, model
    offending: str  # the text at fault (the invented number, the missing name, the forbidden claim, ...)

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "offending": self.offending}


def judge(text: str, facts: dict[str, Any], expect: Expect) -> tuple[list[Failure], bool | None]:
    """Why ``text`` breaks ``expect`` (empty: it passes), and whether its numbers are grounded (None: not checked)."""
    failures: list[Failure] = []
    grounded: bool | None = None
    if expect.grounded:
        result = check_grounding(text, facts)
        grounded = result.grounded
        if not grounded:
            failures.append(Failure("grounded", ", ".join(result.ungrounded)))
    lowered = text.lower()
    names = [str(m) for m in facts.get("must_mention", []) or []] + list(expect.required or ())
    missing = [name for name in names if name.lower() not in lowered]
    if missing:
        failures.append(Failure("required", ", ".join(missing)))
    for claim in expect.forbidden or ():
        if claim.lower() in lowered:
            failures.append(Failure("forbidden", claim))
    for pattern in expect.forbidden_patterns or ():
        match = re.search(pattern, text, flags=re.IGNORECASE)
        if match:
            failures.append(Failure("forbidden", match.group(0)))
    if expect.min_chars is not None and len(text) < expect.min_chars:
        failures.append(Failure("min_chars", f"{len(text)} characters (< {expect.min_chars})"))
    if expect.max_chars is not None and len(text) > expect.max_chars:
        failures.append(Failure("max_chars", f"{len(text)} characters (> {expect.max_chars})"))
    if expect.single_line and "\n" in text.strip():
        failures.append(Failure("single_line", text.strip().splitlines()[1][:80]))
    if expect.json_object or expect.json_keys:
        try:
            value = json.loads(text)
        except ValueError as exc:
            failures.append(Failure("json", f"{exc}: {text[:80]!r}"))
        else:
            if not isinstance(value, dict):
                failures.append(Failure("json", f"a {type(value).__name__}, not an object"))
            else:
                absent = [k for k in expect.json_keys or () if k not in value]
                if absent:
                    failures.append(Failure("json_keys", ", ".join(absent)))
    return failures, grounded


# -- running a version's cases -----------------------------------------------------------------------------------


@dataclass
class CaseResult:
    case_id: str
    text: str
    failures: list[Failure]
    grounded: bool | None

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case_id,
            "passed": self.passed,
            "grounded": self.grounded,
            "failures": [f.as_dict() for f in self.failures],
            "text": self.text,
        }


@dataclass
class VersionResult:
    prompt: Prompt
    source: str  # "template" or the model that answered
    cases: list[CaseResult]

    @property
    def version(self) -> str:
        return self.prompt.version

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    @property
    def pass_rate(self) -> float:
        return sum(c.passed for c in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def grounding_rate(self) -> float | None:
        checked = [c.grounded for c in self.cases if c.grounded is not None]
        return sum(checked) / len(checked) if checked else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "source": self.source,
            "passed": self.passed,
            "cases": len(self.cases),
            "cases_passed": sum(c.passed for c in self.cases),
            "pass_rate": self.pass_rate,
            "grounding_rate": self.grounding_rate,
            "results": [c.as_dict() for c in self.cases],
        }


Answer = Callable[[Prompt, dict[str, Any]], str]


def template_answer(prompt: Prompt, facts: dict[str, Any]) -> str:
    """The offline output: the template rendered from the facts."""
    return prompt.render(facts)


def model_answer(model: str, config: LLMSettings) -> Answer:
    """Answers from ``model`` through litellm, sent what ``LLM.generate`` sends (the prompt's messages, the task's
    call settings from ``config/llm.yaml``, JSON asked for a ``json_object`` prompt); the raw text, before guardrails.
    """
    from mos_pipelines.llm.client import _call_settings, import_litellm

    def answer(prompt: Prompt, facts: dict[str, Any]) -> str:
        litellm = import_litellm()
        extra: dict[str, Any] = {}
        if "json_object" in prompt.guardrails:
            extra = {"response_format": {"type": "json_object"}, "drop_params": True}
        response = litellm.completion(
            model=model, messages=prompt.messages(facts), **_call_settings(config.for_task(prompt.task)), **extra
        )
        return (response.choices[0].message.content or "").strip()

    return answer


def answer_source(model: str, config: LLMSettings) -> Callable[[Prompt], tuple[Answer, str]]:
    """Who answers each prompt's cases: ``template``; ``configured`` (the task's model in ``config/llm.yaml``, the
    template when that is the offline one); or any model string litellm knows, for every prompt."""

    def pick(prompt: Prompt) -> tuple[Answer, str]:
        chosen = config.for_task(prompt.task).model if model == "configured" else model
        if chosen == TEMPLATE or is_offline(chosen):
            return template_answer, TEMPLATE
        return model_answer(chosen, config), chosen

    return pick


def run_version(prompt: Prompt, cases: list[GoldenCase], answer: Answer, source: str) -> VersionResult:
    """Every case of one prompt version: its output, judged. An output that cannot be produced is a failure."""
    results = []
    for case in cases:
        try:
            text = answer(prompt, case.facts)
        except PromptError as exc:
            results.append(CaseResult(case.case_id, "", [Failure("render", str(exc))], None))
            continue
        except Exception as exc:  # a model that failed to answer: litellm raises many types
            results.append(CaseResult(case.case_id, "", [Failure("model", f"{type(exc).__name__}: {exc}")], None))
            continue
        failures, grounded = judge(text, case.facts, case.expect)
        results.append(CaseResult(case.case_id, text, failures, grounded))
    return VersionResult(prompt, source, results)


@dataclass
class Comparison:
    """One prompt: its current version's results and, when proposed, the proposed version's and the regressions."""

    prompt_id: str
    current: VersionResult
    proposed: VersionResult | None = None
    regressions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt_id": self.prompt_id,
            "current": self.current.as_dict(),
            "proposed": self.proposed.as_dict() if self.proposed else None,
            "regressions": self.regressions,
        }


def regressions(current: VersionResult, proposed: VersionResult) -> list[str]:
    """How the proposed version is worse: cases newly failing (with rule and offending text), lower rates."""
    found: list[str] = []
    before = {c.case_id: c for c in current.cases}
    for case in proposed.cases:
        if not case.passed and before.get(case.case_id) is not None and before[case.case_id].passed:
            why = "; ".join(f"{f.rule}: {f.offending}" for f in case.failures)
            found.append(f"case {case.case_id} newly fails ({why})")
    if proposed.pass_rate < current.pass_rate:
        found.append(f"pass rate {current.pass_rate:.0%} -> {proposed.pass_rate:.0%}")
    g0, g1 = current.grounding_rate, proposed.grounding_rate
    if g0 is not None and g1 is not None and g1 < g0:
        found.append(f"grounding pass rate {g0:.0%} -> {g1:.0%}")
    return found


@dataclass
class Report:
    comparisons: list[Comparison]

    @property
    def regressed(self) -> bool:
        return any(c.regressions for c in self.comparisons)

    @property
    def unanswered(self) -> list[str]:
        """Cases no output could be had for (the model failed): the test did not run, which is not a pass."""
        return [
            f"{role} {r.prompt.prompt_id} {c.case_id}: {c.failures[0].offending}"
            for role, r in self.tested()
            for c in r.cases
            if c.failures and c.failures[0].rule == "model"
        ]

    @property
    def current_failed(self) -> bool:
        return any(not c.current.passed for c in self.comparisons)

    def tested(self) -> list[tuple[str, VersionResult]]:
        """Every version run, with its role (current or proposed)."""
        out = [("current", c.current) for c in self.comparisons]
        return out + [("proposed", c.proposed) for c in self.comparisons if c.proposed is not None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "regressed": self.regressed,
            "current_failed": self.current_failed,
            "unanswered": self.unanswered,
            "prompts": [c.as_dict() for c in self.comparisons],
        }


def run(
    golden: dict[str, list[GoldenCase]],
    proposed: dict[str, Prompt] | None = None,
    answer_for: Callable[[Prompt], tuple[Answer, str]] | None = None,
    prompts: dict[str, Prompt] | None = None,
) -> Report:
    """The golden cases of every prompt, for the current version and (when proposed) the proposed one.

    ``answer_for(prompt)`` gives each prompt's answer source and its name (default: the template)."""
    prompts = prompts if prompts is not None else PROMPTS
    proposed = proposed or {}
    answer_for = answer_for or (lambda prompt: (template_answer, TEMPLATE))
    comparisons = []
    for prompt_id in sorted(prompts):
        cases = golden.get(prompt_id, [])
        answer, source = answer_for(prompts[prompt_id])
        comparison = Comparison(prompt_id, run_version(prompts[prompt_id], cases, answer, source))
        if prompt_id in proposed:
            answer, source = answer_for(proposed[prompt_id])
            comparison.proposed = run_version(proposed[prompt_id], cases, answer, source)
            comparison.regressions = regressions(comparison.current, comparison.proposed)
        comparisons.append(comparison)
    return Report(comparisons)
