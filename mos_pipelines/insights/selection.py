"""From candidates to insights: Benjamini–Hochberg within each insight type of the run, then significance and
materiality.

Each type is its own family: a run holds hundreds of channel comparisons, most of them true differences, and
pooling a family of mostly null tests (email variants, anomalies of a quiet week) with them would let that
family's nulls through at the pooled, lenient threshold — its own false-discovery rate unbounded while the
run's stays at 5 %. Within each family the rate is controlled, and so across the run."""

from __future__ import annotations

import math

from mos_pipelines.configuration.insights import InsightsSettings
from mos_pipelines.insights.candidate import Candidate
from mos_pipelines.insights.effect_statistics import benjamini_hochberg

ACCEPTED = "accepted"
REJECTED_DATA = "rejected_insufficient_data"
REJECTED_SIGNIFICANCE = "rejected_not_significant"
REJECTED_MATERIALITY = "rejected_not_material"


def decide(candidates: list[Candidate], config: InsightsSettings) -> None:
    """Set q-value, status and reason on every candidate (in place)."""
    tested = [
        c
        for c in candidates
        if c.untestable is None
        and c.p_value is not None
        and math.isfinite(c.p_value)
        and c.effect_size is not None
        and math.isfinite(c.effect_size)
    ]
    for kind in dict.fromkeys(c.insight_type for c in tested):
        family = [c for c in tested if c.insight_type == kind]
        for candidate, q in zip(family, benjamini_hochberg([c.p_value for c in family])):
            candidate.q_value = float(q)
    tested_ids = {id(c) for c in tested}
    for c in candidates:
        if id(c) not in tested_ids:
            c.status, c.reason = REJECTED_DATA, c.untestable or "no test possible (an arm has no events)"
            c.q_value = None
            continue
        threshold = c.material_threshold if c.material_threshold is not None else config.min_relative_effect
        if c.q_value > config.max_q_value:
            c.status = REJECTED_SIGNIFICANCE
            c.reason = f"not significant: q = {c.q_value:.3g} > {config.max_q_value:g} (p = {c.p_value:.3g})"
        elif c.relative_effect is None or c.relative_effect < threshold:
            c.status = REJECTED_MATERIALITY
            c.reason = f"not material: effect {100 * (c.relative_effect or 0):.1f} % < {100 * threshold:.0f} %"
        elif c.impact_required and (c.impact_usd or 0.0) < config.min_impact_usd:
            c.status = REJECTED_MATERIALITY
            c.reason = f"not material: impact ${c.impact_usd or 0:,.0f} < ${config.min_impact_usd:,.0f}"
        else:
            c.status, c.reason = ACCEPTED, None
