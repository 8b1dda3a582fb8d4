"""A candidate insight: an effect with its test, the evidence behind it, and how to phrase and act on it."""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from mos_pipelines.configuration.insights import InsightsSettings
from mos_pipelines.insights.effect_statistics import order_value_cv2
from mos_pipelines.insights.semantic import Filter, SemanticError, SemanticLayer

INSIGHT_TYPES = (
    "channel_comparison",
    "region_comparison",
    "icp_comparison",
    "anomaly",
    "budget_pacing",
    "lookalike_degradation",
    "experiment_winner",
    "holdout_lift",
)


@dataclass
class Candidate:
    """One tested hypothesis. ``key`` identifies the same question across runs (type, metric, subject)."""

    key: str
    insight_type: str
    subject: dict[str, Any]  # what it is about: metric, region, channels, campaign, variant, audience …
    objective: str
    hypothesis: str
    prompt_id: str
    facts: dict[str, Any]  # what the sentence may say (grounded)
    call_to_action: str
    evidence: dict[str, Any]  # metric query, rows, summary, statistics
    effect_size: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    impact_usd: float | None = None
    relative_effect: float | None = None  # for materiality: |ratio − 1| on the larger side, or |change|
    direction: str | None = None  # higher | lower
    untestable: str | None = None  # why no test could be run (too little data …)
    material_threshold: float | None = None  # overrides the config's min_relative_effect
    impact_required: bool = True
    q_value: float | None = None
    status: str = "rejected"
    reason: str | None = None
    statement: str | None = None
    phrasing: dict[str, Any] = field(default_factory=dict)

    def insight_id(self, created_at: datetime.datetime) -> str:
        return hashlib.sha256(f"{self.key}|{created_at.isoformat()}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Skip:
    """A family (or part of one) that could not run, and why."""

    family: str
    reason: str


@dataclass
class RunContext:
    con: duckdb.DuckDBPyConnection
    semantic: SemanticLayer
    config: InsightsSettings
    window_start: datetime.date
    window_end: datetime.date
    created_at: datetime.datetime

    @property
    def days(self) -> int:
        return (self.window_end - self.window_start).days + 1

    @property
    def confidence_pct(self) -> float:
        return round(self.config.confidence_level * 100, 1)

    @functools.cached_property
    def order_value_cv2(self) -> float:
        """Squared coefficient of variation of one order's revenue over the window, from every day × channel ×
        region (the compound model's CV² for revenue tests; NaN without revenue)."""
        where = [Filter("metric_time__day", ">=", self.window_start), Filter("metric_time__day", "<=", self.window_end)]
        try:
            cells = self.semantic.run(
                self.con,
                self.semantic.query(["revenue", "conversions"], ["metric_time__day", "channel", "region"], where),
            )
        except SemanticError:  # no revenue or conversions by channel and region: each test uses its own data
            return float("nan")
        return order_value_cv2(
            cells["revenue"].fillna(0).to_numpy(float), cells["conversions"].fillna(0).to_numpy(float)
        )


def clean(value: Any) -> Any:
    """JSON-safe values (NaN → None, numpy → Python, dates → ISO strings)."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, datetime.datetime)):
        stamp = pd.Timestamp(value)
        return stamp.date().isoformat() if stamp.time() == datetime.time(0) and stamp.tz is None else stamp.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [clean(r) for r in frame.to_dict(orient="records")]


def evidence_json(evidence: dict[str, Any]) -> str:
    return json.dumps(clean(evidence), sort_keys=False, default=str)


def key_of(*parts: Any) -> str:
    return "|".join(str(p) for p in parts)


def money(value: float) -> float:
    return round(float(value), 2)
