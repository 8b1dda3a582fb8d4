"""Email copy per campaign variant: a renderer writes it, guardrails check it, people approve claims.

The copy of a variant is rendered once per run from its template (``content.templates`` in the
activation config) with ``{first_name}`` and ``{company}`` left as placeholders, then filled per
recipient. ``StaticRenderer`` uses the template as written. Any other renderer (the LLM layer,
through ``LlmCopyRenderer``) must implement ``CopyRenderer``; its text is kept only when every number
it states also appears in the facts it was given, else the template is used and the copy is flagged.

A variant's copy is rendered once and kept in ``activation.variant_copy`` (keyed by the campaign, the
variant, the template text and the renderer's settings): later runs reuse it, so a model that words
things differently each time never changes what recipients get (and never makes the ledger see a
"changed" email to send again). Changing the template or the renderer's model renders it anew; deleting
a row re-renders that variant on the next run.

Copy that states a number, a price or a discount needs a human approval (``activation.approvals``,
``mos approvals list|approve|reject``): recipients of that variant wait until it is approved and are
never sent rejected copy. This applies to the static templates too.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb
import pandas as pd

from mos_pipelines.configuration.activation import ContentSettings, CopyTemplate

PLACEHOLDERS = ("first_name", "company")
FALLBACKS = {"first_name": "there", "company": "your team"}

# What counts as a claim that needs approval: any figure, a currency amount, a percentage, or offer words.
_CLAIMS = re.compile(
    r"(?:[$€£¥]\s?\d[\d,.]*|\d[\d,.]*\s?(?:%|percent|usd|eur|gbp|dollars?|euros?)|\d[\d,.]*"
    r"|\b(?:discount\w*|coupon\w*|promo(?:tion)?\s?code|free\s+(?:for|month|months|year|upgrade)|off\s+your|save\b|sale\b|price\w*)\b)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")

APPROVALS_DDL = """
create schema if not exists activation;
create table if not exists activation.approvals (
    approval_id varchar primary key,
    campaign_id varchar not null,
    variant_id varchar not null,
    template_id varchar not null,
    renderer varchar not null,
    subject varchar not null,
    body varchar not null,
    claims json not null,
    status varchar not null,
    requested_at timestamp not null,
    decided_at timestamp,
    decided_by varchar,
    note varchar
);
"""
APPROVAL_STATUSES = ("pending", "approved", "rejected")

VARIANT_COPY_DDL = """
create schema if not exists activation;
create table if not exists activation.variant_copy (
    copy_key varchar primary key,     -- sha-256 of campaign, variant, template text and renderer settings
    campaign_id varchar not null,
    variant_id varchar not null,
    template_id varchar not null,
    renderer_settings varchar not null,  -- static, or the model chain and prompt version
    subject varchar not null,
    body varchar not null,
    renderer varchar not null,        -- who wrote the kept text: static, or the model
    flagged boolean not null,         -- the renderer's text was rejected and the template kept
    reason varchar,
    rendered_at timestamp not null
);
"""


class ApprovalError(ValueError):
    """An approval id that does not exist, or a decision on copy that is already decided."""


@dataclass(frozen=True)
class CopyBrief:
    """What a renderer gets for one variant: its template and the facts it may use."""

    campaign_id: str
    variant_id: str
    variant_name: str | None
    template_id: str
    template: CopyTemplate
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderedCopy:
    subject: str
    body: str
    renderer: str  # static, or the model that wrote it
    flagged: bool = False  # a renderer's text was rejected and the template used instead
    reason: str | None = None


class CopyRenderer(Protocol):
    """Writes the copy of one variant (placeholders {first_name} and {company} may stay in the text)."""

    name: str

    def render(self, brief: CopyBrief) -> RenderedCopy: ...


class StaticRenderer:
    """The template as written."""

    name = "static"
    settings = "static"

    def render(self, brief: CopyBrief) -> RenderedCopy:
        return RenderedCopy(brief.template.subject, brief.template.body, "static")


class LlmCopyRenderer:
    """Copy from the LLM layer: anything with ``generate(task, prompt_id, facts)`` returning an object
    with ``text`` ("Subject: ...\\n<body>"), ``model``, ``flagged`` and ``reason`` (the project's
    ``mos_pipelines.llm.LLM``)."""

    name = "llm"

    def __init__(self, llm: Any, task: str = "email_copy", prompt_id: str = "email.copy") -> None:
        self.llm, self.task, self.prompt_id = llm, task, prompt_id

    @property
    def settings(self) -> str:
        """The model chain and prompt version: what the kept copy depends on besides the template."""
        config = getattr(self.llm, "config", None)
        chain = ",".join(config.for_task(self.task).chain) if config is not None else "unknown"
        try:
            from mos_pipelines.llm import get_prompt

            version = get_prompt(self.prompt_id).version
        except KeyError:
            version = "unknown"
        return f"llm:{chain}:{self.prompt_id}@{version}"

    def render(self, brief: CopyBrief) -> RenderedCopy:
        subject, body = brief.template.subject.strip(), brief.template.body.strip()
        # The template's own figures are facts the copy may restate (a 20 % offer stays 20 %).
        facts = {
            "subject": subject,
            "body": body,
            "campaign_id": brief.campaign_id,
            "variant_id": brief.variant_id,
            "figures": sorted(_numbers(subject + " " + body)),
            **brief.facts,
        }
        from mos_pipelines.llm.gate import PromptBlocked

        try:
            generation = self.llm.generate(self.task, self.prompt_id, facts)
        except PromptBlocked as exc:  # the prompt failed its golden cases and no passing version is known
            return RenderedCopy(subject, body, "static", flagged=True, reason=str(exc))
        subject, _, body = generation.text.partition("\n")
        subject = subject.removeprefix("Subject:").strip()
        return RenderedCopy(
            subject, body.strip(), str(generation.model), bool(generation.flagged), getattr(generation, "reason", None)
        )


def renderer_from_settings(settings: ContentSettings, con: duckdb.DuckDBPyConnection | None = None) -> CopyRenderer:
    """The renderer the config names. `llm` uses the LLM layer (models per task in config/llm.yaml, the
    offline provider by default); with a connection its calls are kept in ``ops.llm_calls``."""
    if settings.renderer == "static":
        return StaticRenderer()
    from mos_pipelines.llm import LLM, Ledger

    return LlmCopyRenderer(LLM(ledger=Ledger(con)))


def numeric_claims(text: str) -> list[str]:
    """Figures, prices, percentages and offer words in ``text`` (placeholders excluded)."""
    text = re.sub(r"\{[a-z_]+\}", " ", text)
    found: list[str] = []
    for match in _CLAIMS.finditer(text):
        claim = match.group(0).strip()
        if claim and claim.lower() not in (c.lower() for c in found):
            found.append(claim)
    return found


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(re.sub(r"\{[a-z_]+\}", " ", text))}


def guarded(brief: CopyBrief, copy: RenderedCopy) -> RenderedCopy:
    """The renderer's copy when it states no number absent from its template and facts, and keeps only
    known placeholders; else the template, flagged."""
    allowed = _numbers(
        brief.template.subject + " " + brief.template.body + " " + json.dumps(dict(brief.facts), default=str)
    )
    invented = sorted(_numbers(copy.subject + " " + copy.body) - allowed)
    problems = []
    if invented:
        problems.append(f"numbers not in the facts: {', '.join(invented)}")
    for text in (copy.subject, copy.body):
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f}
        unknown = fields - set(PLACEHOLDERS)
        if unknown:
            problems.append(f"unknown placeholders: {', '.join(sorted(unknown))}")
    if not copy.subject.strip() or not copy.body.strip():
        problems.append("empty subject or body")
    if problems:
        return RenderedCopy(
            brief.template.subject,
            brief.template.body,
            "static",
            flagged=True,
            reason=f"{copy.renderer}: {'; '.join(problems)}",
        )
    return copy


def render_variant(brief: CopyBrief, renderer: CopyRenderer) -> RenderedCopy:
    """The variant's copy from ``renderer`` (any error: the template, flagged), checked by ``guarded``."""
    if isinstance(renderer, StaticRenderer):
        return renderer.render(brief)
    try:
        copy = renderer.render(brief)
    except Exception as exc:  # a renderer failing must not stop the send: the template is the fallback
        return RenderedCopy(
            brief.template.subject,
            brief.template.body,
            "static",
            flagged=True,
            reason=f"{renderer.name}: {type(exc).__name__}: {exc}",
        )
    return guarded(brief, copy)


def kept_copy(
    con: duckdb.DuckDBPyConnection, brief: CopyBrief, renderer: CopyRenderer, now: datetime.datetime
) -> RenderedCopy:
    """The variant's copy as first rendered for this template and renderer (``activation.variant_copy``);
    rendered (``render_variant``) and kept when there is none yet."""
    con.execute(VARIANT_COPY_DDL)
    settings = str(getattr(renderer, "settings", renderer.name))
    key = hashlib.sha256(
        json.dumps(
            [
                brief.campaign_id,
                brief.variant_id,
                brief.template.subject,
                brief.template.body,
                settings,
                dict(brief.facts),
            ],
            default=str,
        ).encode()
    ).hexdigest()
    found = con.execute(
        "select subject, body, renderer, flagged, reason from activation.variant_copy where copy_key = ?", [key]
    ).fetchall()
    if found:
        return RenderedCopy(*found[0])
    copy = render_variant(brief, renderer)
    con.execute(
        "insert into activation.variant_copy values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            key,
            brief.campaign_id,
            brief.variant_id,
            brief.template_id,
            settings,
            copy.subject,
            copy.body,
            copy.renderer,
            copy.flagged,
            copy.reason,
            now,
        ],
    )
    return copy


def personalise(text: str, recipient: Mapping[str, Any]) -> str:
    """Fill {first_name} and {company} (with neutral words when unknown); other braces stay as written."""
    values = {k: (str(recipient.get(k)).strip() if recipient.get(k) else FALLBACKS[k]) for k in PLACEHOLDERS}
    return re.sub(r"\{(first_name|company)\}", lambda m: values[m.group(1)], text)


def approval_id(campaign_id: str, variant_id: str, copy: RenderedCopy) -> str:
    return hashlib.sha256(f"{campaign_id}|{variant_id}|{copy.subject}|{copy.body}".encode()).hexdigest()[:16]


# -- the approval queue ------------------------------------------------------------------------------


def ensure_approvals(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(APPROVALS_DDL)


def request_approval(
    con: duckdb.DuckDBPyConnection, brief: CopyBrief, copy: RenderedCopy, claims: list[str], now: datetime.datetime
) -> tuple[str, str]:
    """Queue the copy for approval unless it already is; returns (approval id, its status)."""
    ensure_approvals(con)
    key = approval_id(brief.campaign_id, brief.variant_id, copy)
    found = con.execute("select status from activation.approvals where approval_id = ?", [key]).fetchall()
    if found:
        return key, found[0][0]
    con.execute(
        "insert into activation.approvals values (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, null, null, null)",
        [
            key,
            brief.campaign_id,
            brief.variant_id,
            brief.template_id,
            copy.renderer,
            copy.subject,
            copy.body,
            json.dumps(claims),
            now,
        ],
    )
    return key, "pending"


def list_approvals(con: duckdb.DuckDBPyConnection, status: str | None = None) -> pd.DataFrame:
    ensure_approvals(con)
    where, params = ("where status = ?", [status]) if status else ("", [])
    return con.execute(f"select * from activation.approvals {where} order by requested_at, approval_id", params).df()


def decide(
    con: duckdb.DuckDBPyConnection, key: str, decision: str, decided_by: str, note: str | None, now: datetime.datetime
) -> None:
    """Approve or reject pending copy (a decided one cannot be changed: copy that changes gets a new id)."""
    if decision not in ("approved", "rejected"):
        raise ApprovalError(f"decision must be approved or rejected, not {decision!r}")
    ensure_approvals(con)
    found = con.execute("select status from activation.approvals where approval_id = ?", [key]).fetchall()
    if not found:
        raise ApprovalError(f"no approval {key!r} (see `mos approvals list`)")
    if found[0][0] != "pending":
        raise ApprovalError(f"approval {key!r} is already {found[0][0]}")
    con.execute(
        "update activation.approvals set status = ?, decided_at = ?, decided_by = ?, note = ? where approval_id = ?",
        [decision, now, decided_by, note, key],
    )
