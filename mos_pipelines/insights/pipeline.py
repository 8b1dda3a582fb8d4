"""One insights run: candidates from every family → BH + significance + materiality → phrasing → tables."""

from __future__ import annotations

import datetime
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from mos_pipelines.configuration import load_insights, load_llm
from mos_pipelines.configuration.insights import InsightsSettings
from mos_pipelines.insights import insight_tables
from mos_pipelines.insights.anomalies import anomalies
from mos_pipelines.insights.candidate import Candidate, RunContext, Skip
from mos_pipelines.insights.channel_comparisons import channel_comparisons, region_comparisons
from mos_pipelines.insights.experiment_findings import experiment_candidates
from mos_pipelines.insights.icp_comparisons import icp_comparisons
from mos_pipelines.insights.lookalike_degradation import lookalike_degradation
from mos_pipelines.insights.pacing import budget_pacing
from mos_pipelines.insights.selection import ACCEPTED, decide
from mos_pipelines.insights.semantic import SemanticLayer
from mos_pipelines.llm import LLM, Ledger
from mos_pipelines.llm.gate import PromptBlocked
from mos_pipelines.llm.prompts import get_prompt
from mos_pipelines.warehouse import table_exists

log = logging.getLogger("mos_pipelines.insights")

FAMILIES: dict[str, Callable[[RunContext], tuple[list[Candidate], list[Skip]]]] = {
    "channel_comparison": channel_comparisons,
    "region_comparison": region_comparisons,
    "icp_comparison": icp_comparisons,
    "anomaly": anomalies,
    "budget_pacing": budget_pacing,
    "lookalike_degradation": lookalike_degradation,
    "experiments": experiment_candidates,
}


class InsightsError(RuntimeError):
    """The insights cannot run (the marts they read are missing or empty)."""


@dataclass
class InsightsRun:
    created_at: datetime.datetime
    window_start: datetime.date | None  # None: no data to look at (every family skipped)
    window_end: datetime.date | None
    candidates: list[Candidate]
    skips: list[Skip]
    seconds: dict[str, float] = field(default_factory=dict)
    llm: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status == ACCEPTED]

    def counts(self) -> dict[str, int]:
        return dict(Counter(c.status for c in self.candidates))


def generate_insights(
    con: duckdb.DuckDBPyConnection,
    config: InsightsSettings | None = None,
    semantic: SemanticLayer | None = None,
    llm: LLM | None = None,
    now: datetime.datetime | None = None,
    write: bool = True,
    use_llm: bool = True,
) -> InsightsRun:
    """Compute, test, select, phrase and (by default) store the insights of one run.

    ``use_llm=False`` writes every statement from its template without a model call (evaluations that
    only need the statistics)."""
    config = config or load_insights()
    semantic = semantic or SemanticLayer.load()
    created_at = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
    if not table_exists(con, "marts", "fct_channel_performance"):
        raise InsightsError("marts.fct_channel_performance does not exist: build the marketing marts first (mos run)")
    bounds = semantic.time_bounds(con, "sessions")
    if bounds is None:
        reason = (
            "marts.fct_channel_performance is empty: no sessions, spend, sends or orders to compare "
            "(land events, ad spend, email or orders to get insights)"
        )
        if write:
            insight_tables.ensure_tables(con)
        return InsightsRun(created_at, None, None, [], [Skip("all families", reason)])
    end = bounds[1]
    start = max(bounds[0], end - datetime.timedelta(days=config.window_days - 1))
    ctx = RunContext(con, semantic, config, start, end, created_at)
    candidates: list[Candidate] = []
    skips: list[Skip] = []
    seconds: dict[str, float] = {}
    for name, family in FAMILIES.items():
        if not config.enabled(name):
            skips.append(Skip(name, "disabled in the insights config"))
            continue
        began = time.perf_counter()
        found, skipped = family(ctx)
        seconds[name] = round(time.perf_counter() - began, 3)
        candidates += found
        skips += skipped
    decide(candidates, config)
    if write:
        insight_tables.ensure_tables(con)
    if use_llm and llm is None:
        llm = LLM(load_llm(), Ledger(con if write else None))
    began = time.perf_counter()
    phrase(candidates, llm if use_llm else None)
    seconds["phrasing"] = round(time.perf_counter() - began, 3)
    run = InsightsRun(
        created_at, start, end, candidates, skips, seconds, llm.ledger.totals() if use_llm and llm is not None else {}
    )
    if write:
        insight_tables.write_insights(con, candidates, created_at)
    for skip in skips:
        log.info("insights: %s skipped: %s", skip.family, skip.reason)
    return run


def phrase(candidates: list[Candidate], llm: LLM | None) -> None:
    """Accepted insights are written by the task's model (grounded, else the template); the others by template."""
    for c in candidates:
        if c.status == ACCEPTED and llm is not None:
            try:
                generation = llm.generate("insight_phrasing", c.prompt_id, c.facts, context=c.key)
            except PromptBlocked as exc:  # its prompt failed its golden cases and no passing version is known
                _not_phrased(c, exc)
                continue
            c.statement = generation.text
            c.phrasing = generation.as_dict()
        elif c.facts:
            try:  # the version the gate allows (the registry's when there is no model to gate it through)
                prompt, gate = llm.prompt(c.prompt_id) if llm is not None else (get_prompt(c.prompt_id), None)
            except PromptBlocked as exc:
                _not_phrased(c, exc)
                continue
            c.statement = prompt.render(c.facts)
            c.phrasing = {
                "model": "template",
                "prompt_id": c.prompt_id,
                "prompt_version": prompt.version,
                "flagged": False,
            }
            if gate:
                c.phrasing["prompt_gate"] = gate
        elif not c.statement:
            c.statement = f"{c.insight_type} {c.key}: not tested (see the reason in the evidence)."


def _not_phrased(c: Candidate, exc: PromptBlocked) -> None:
    """No version of the candidate's prompt may be used: a statement without figures, the reason in its phrasing."""
    c.statement = f"{c.insight_type} {c.key}: not phrased (prompt {c.prompt_id} failed its golden cases; see phrasing)."
    c.phrasing = {"model": "none", "prompt_id": c.prompt_id, "flagged": True, "reason": str(exc)}
