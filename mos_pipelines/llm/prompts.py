"""The prompt registry: every prompt a task sends, with its deterministic template and guardrails.

A prompt has an id, the task it belongs to, the instructions a model gets, a ``template`` that renders
the same message from the facts alone (what the offline provider writes, and the fallback whenever a
model's text is rejected), and guardrail rules its output must pass. Its version is a hash of all of
these, recorded with every call in ``ops.llm_calls``, so a changed prompt is a new version.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass
from typing import Any

from mos_pipelines.llm.grounding import check_grounding

FACTS_START = "<facts>"
FACTS_END = "</facts>"

# Guardrail rules: "numbers_grounded" (every number is in the facts), "max_chars:N", "must_mention"
# (every string in facts["must_mention"] appears), "no_urls", "single_line".
DEFAULT_GUARDRAILS = ("numbers_grounded", "max_chars:400", "must_mention", "no_urls", "single_line")


class PromptError(KeyError):
    """No prompt with that id, or a template names a fact that is missing."""

    def __str__(self) -> str:  # the message as written (KeyError would quote it)
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Prompt:
    prompt_id: str
    task: str
    instructions: str
    template: str  # str.format over the facts
    guardrails: tuple[str, ...] = DEFAULT_GUARDRAILS

    @property
    def version(self) -> str:
        payload = json.dumps([self.prompt_id, self.task, self.instructions, self.template, list(self.guardrails)])
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def render(self, facts: dict[str, Any]) -> str:
        """The deterministic text: the template filled from the facts."""
        try:
            return string.Formatter().vformat(self.template, (), facts).strip()
        except (KeyError, IndexError) as exc:
            raise PromptError(f"prompt {self.prompt_id}: the facts have no {exc}") from exc

    def messages(self, facts: dict[str, Any]) -> list[dict[str, str]]:
        """What a model is sent: the instructions, then the facts as JSON between markers."""
        rules = "; ".join(_describe(rule) for rule in self.guardrails)
        system = f"{self.instructions}\nRules: {rules}."
        user = (
            f"prompt_id: {self.prompt_id}\nprompt_version: {self.version}\n{FACTS_START}\n{json.dumps(facts, sort_keys=True, default=str)}\n"
            f"{FACTS_END}\nExample of an acceptable answer: {self.render(facts)}"
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def violations(self, text: str, facts: dict[str, Any]) -> list[str]:
        """Why a text breaks this prompt's guardrails (empty when it passes)."""
        problems = []
        if not text.strip():
            return ["empty text"]
        for rule in self.guardrails:
            name, _, arg = rule.partition(":")
            if name == "numbers_grounded":
                result = check_grounding(text, facts)
                if not result.grounded:
                    problems.append(result.reason or "ungrounded numbers")
            elif name == "max_chars" and len(text) > int(arg):
                problems.append(f"longer than {arg} characters ({len(text)})")
            elif name == "must_mention":
                missing = [m for m in facts.get("must_mention", []) if m.lower() not in text.lower()]
                if missing:
                    problems.append("does not mention " + ", ".join(missing))
            elif name == "no_urls" and re.search(r"https?://|www\.", text):
                problems.append("contains a URL")
            elif name == "single_line" and "\n" in text.strip():
                problems.append("more than one line")
            elif name == "json_object":
                try:
                    parsed = json.loads(text)
                except ValueError:
                    parsed = None
                if not isinstance(parsed, dict):
                    problems.append("not one JSON object")
        return problems


_RULES = ("numbers_grounded", "max_chars", "must_mention", "no_urls", "single_line", "json_object")


def known_rule(rule: str) -> bool:
    """Whether ``rule`` is a guardrail this module checks (``max_chars`` with a whole number)."""
    name, _, arg = rule.partition(":")
    if name == "max_chars":
        return arg.isdigit() and int(arg) > 0
    return name in _RULES and not arg


def _describe(rule: str) -> str:
    name, _, arg = rule.partition(":")
    return {
        "numbers_grounded": "state no number that is not in the facts (rounding is fine)",
        "max_chars": f"at most {arg} characters",
        "must_mention": "mention every name listed in must_mention",
        "no_urls": "no links",
        "single_line": "one line, no lists",
        "json_object": "answer with one JSON object that follows the schema in the facts, and nothing else",
    }.get(name, rule)


_INSIGHT = (
    "You write one sentence for a marketer stating what the data shows, using the facts given and "
    "nothing else. Keep the names, the figures and the direction of the effect."
)

PROMPTS: dict[str, Prompt] = {
    p.prompt_id: p
    for p in (
        Prompt(
            "insight.channel_comparison",
            "insight_phrasing",
            _INSIGHT,
            "{scope}, {a_label} {verb} {prefix}{a_display:{fmt}}{suffix} vs {prefix}{b_display:{fmt}}{suffix} for "
            "{b_label} ({ratio:.2f}× {ratio_phrase}, {confidence_level:.0f} % CI {ci_low:.2f}–{ci_high:.2f}×) "
            "over {days} days.",
        ),
        Prompt(
            "insight.region_comparison",
            "insight_phrasing",
            _INSIGHT,
            "{a_label} {verb} {prefix}{a_display:{fmt}}{suffix} in {region} vs {prefix}{b_display:{fmt}}{suffix} in "
            "the other regions ({ratio:.2f}× {ratio_phrase}, {confidence_level:.0f} % CI {ci_low:.2f}–{ci_high:.2f}×) "
            "over {days} days.",
        ),
        Prompt(
            "insight.icp_comparison",
            "insight_phrasing",
            _INSIGHT,
            "{a_label} {verb} {prefix}{a_display:{fmt}}{suffix} for ICP tier {tier} customers vs "
            "{prefix}{b_display:{fmt}}{suffix} for the other tiers ({ratio:.2f}× {ratio_phrase}, "
            "{confidence_level:.0f} % CI {ci_low:.2f}–{ci_high:.2f}×) over {days} days.",
        ),
        Prompt(
            "insight.anomaly",
            "insight_phrasing",
            _INSIGHT,
            "{metric_label} {scope} {direction} {change_pct:.0f} % in the 7 days to {week_end}: "
            "{prefix}{observed:{fmt}} vs {prefix}{expected:{fmt}} expected from the same weekdays of the "
            "{baseline_weeks} weeks before ({confidence_level:.0f} % CI {ci_low_pct:.0f} % to {ci_high_pct:.0f} %).",
        ),
        Prompt(
            "insight.pacing",
            "insight_phrasing",
            _INSIGHT,
            "Campaign {campaign_id} spent ${spend:,.0f} of its ${budget:,.0f} budget over the last {days} days "
            "({pace_pct:.0f} % of plan, {confidence_level:.0f} % CI {ci_low_pct:.0f}–{ci_high_pct:.0f} %).",
        ),
        Prompt(
            "insight.lookalike_degradation",
            "insight_phrasing",
            _INSIGHT,
            "The lookalike model for audience {audience} finds {recall_now_pct:.0f} % of held-out seed members in its "
            "top {tier:.0f} % tier, down from {recall_before_pct:.0f} % in its last accepted fit "
            "({confidence_level:.0f} % CI of the change {ci_low_pts:.0f} to {ci_high_pts:.0f} points).",
        ),
        Prompt(
            "insight.experiment_winner",
            "insight_phrasing",
            _INSIGHT,
            "{scope}, variant {variant_id} of {campaign_id} has a {metric_label} of {a_pct:.1f} % vs {b_pct:.1f} % "
            "for {b_label} ({ratio:.2f}×, {confidence_level:.0f} % CI {ci_low:.2f}–{ci_high:.2f}×, "
            "{a_n:,.0f} vs {b_n:,.0f} {unit}).",
        ),
        Prompt(
            "insight.holdout_lift",
            "insight_phrasing",
            _INSIGHT,
            "{scope}, units assigned to {campaign_id} (variants {variant_id}) convert within {window_days} days at "
            "{a_pct:.1f} % vs {b_pct:.1f} % in the holdout ({ratio:.2f}×, {confidence_level:.0f} % CI "
            "{ci_low:.2f}–{ci_high:.2f}×; {a_n:,.0f} vs {b_n:,.0f} units).",
        ),
        Prompt(
            "email.copy",
            "email_copy",
            "You write a short marketing email (a subject line, then one paragraph) for the campaign brief given. "
            "Mention the product and the offer; invent no prices, dates or figures.",
            "Subject: {subject}\n{body}",
            guardrails=("numbers_grounded", "max_chars:1200", "must_mention", "no_urls"),
        ),
        Prompt(
            "question.answer",
            "question_answering",
            "You answer a marketer's question in two sentences from the rows of a metric query given as facts.",
            "{answer}",
            guardrails=("numbers_grounded", "max_chars:600", "no_urls"),
        ),
        Prompt(
            "question.spec",
            "question_answering",
            "You turn a marketer's question into a query spec (JSON): a metric query over the metrics and dimension "
            'values listed, or a customer look-up over the customer fields listed, or {"refusal": reason} when '
            "the listed metrics and fields cannot answer it. Use only names and values listed in the facts; relative "
            "dates end at as_of. A follow-up starts from the previous spec given.",
            "{example}",
            guardrails=("json_object",),
        ),
        Prompt(
            "blueprint.objective",
            "blueprint_intake",
            "You read a marketer's objective and return its structured form: the goal metric, the segment (filters on "
            "the dimensions and values listed), the budget in USD, the horizon in months, a target if one is stated, "
            "and constraints. Use only metrics, dimension values and channels listed in the facts.",
            "{example}",
            guardrails=("json_object",),
        ),
        Prompt(
            "blueprint.plan",
            "blueprint_planning",
            "You plan marketing workflow steps for the objective and goal given, from the step catalogue and the "
            "context facts. Each step has an id, a type from the catalogue, its parameters, depends_on (step ids, no "
            "cycles), a budget in USD and an expected outcome; the budgets add up to the total budget exactly.",
            "{example}",
            guardrails=("json_object",),
        ),
        Prompt(
            "notes.extract",
            "note_extraction",
            "You read a sales rep's note about a contact and list the facts it states, following the schema in the "
            "facts: product interest, budget amount and currency, decision timeline (a date range), competitors "
            "evaluated, the contact's role and seniority, pain point, next step and its date, sentiment. Values come "
            "from the vocabulary given; dates are ISO and relative dates count from note_date. Each fact quotes the "
            "note's own words as evidence; a competitor or product the note rules out is negated. State nothing the "
            "note does not say.",
            "{example}",
            guardrails=("json_object",),
        ),
    )
}


def get_prompt(prompt_id: str, version: str | None = None) -> Prompt:
    """The registry's prompt; with ``version``, that version of it (the registry's, or one ``remember``ed in this
    process: a version the prompt gate falls back to)."""
    try:
        prompt = PROMPTS[prompt_id]
    except KeyError:
        raise PromptError(f"no prompt '{prompt_id}' (known: {', '.join(sorted(PROMPTS))})") from None
    if version is None or version == prompt.version:
        return prompt
    try:
        return _VERSIONS[(prompt_id, version)]
    except KeyError:
        raise PromptError(f"prompt {prompt_id} has no version {version} in this process") from None


_VERSIONS: dict[tuple[str, str], Prompt] = {}


def remember(prompt: Prompt) -> Prompt:
    """Make a version other than the registry's known to ``get_prompt`` (the offline provider renders it)."""
    _VERSIONS[(prompt.prompt_id, prompt.version)] = prompt
    return prompt


def facts_from_messages(messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The prompt id and facts a message list carries (what the offline provider reads)."""
    prompt_id, _, facts = prompt_of_messages(messages)
    return prompt_id, facts


def prompt_of_messages(messages: list[dict[str, Any]]) -> tuple[str, str | None, dict[str, Any]]:
    """The prompt id, prompt version (None when not stated) and facts a message list carries."""
    for message in reversed(messages):
        content = message.get("content") or ""
        if isinstance(content, list):  # content parts
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        if FACTS_START in content and FACTS_END in content:
            prompt_id = re.search(r"prompt_id: (\S+)", content)
            version = re.search(r"prompt_version: (\S+)", content)
            block = content.split(FACTS_START, 1)[1].split(FACTS_END, 1)[0]
            return (
                (prompt_id.group(1) if prompt_id else ""),
                (version.group(1) if version else None),
                json.loads(block),
            )
    raise PromptError("the messages carry no facts block")
