"""Is an insight decomposable? Its statement's numbers come from its evidence, and the evidence's
summary is what its rows add up to.

- Every number in the statement must be one of the evidence's summary figures, statistics, window or
  impact (rounding and formatting allowed, as the grounding check does) — not of the prompt facts.
- Each summary arm must equal the sum of the evidence rows that belong to it, and the effect must be
  the ratio (or change) of the summary figures.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from mos_pipelines.llm.grounding import check_grounding

TOLERANCE = 1e-6


def traceable_facts(evidence: dict[str, Any]) -> dict[str, Any]:
    """The part of the evidence a statement may quote."""
    facts = {k: evidence.get(k) for k in ("summary", "statistics", "window", "impact", "subject")}
    if "budget_query" in evidence:
        facts["budget_rows"] = evidence["budget_query"].get("rows")
    return facts


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def _sum(rows: pd.DataFrame, column: str) -> float:
    return float(rows[column].fillna(0).sum()) if column in rows else 0.0


def problems(insight_type: str, statement: str, effect_size: float | None, evidence: dict[str, Any]) -> list[str]:
    """Why an insight is not traceable to its evidence (empty when it is)."""
    found = []
    grounding = check_grounding(statement, traceable_facts(evidence))
    if not grounding.grounded:
        found.append(f"statement: {grounding.reason}")
    rows = pd.DataFrame(evidence.get("rows") or [])
    summary = evidence.get("summary") or []
    if rows.empty or not summary:
        return found + (["no evidence rows or summary"] if insight_type != "lookalike_degradation" else [])
    metric = (evidence.get("subject") or {}).get("metric")
    if insight_type == "channel_comparison":
        for arm in summary:
            part = rows[rows["channel"] == arm["channel"]]
            found += _arm_sums(arm, part)
        found += _ratio(summary, metric, effect_size)
    elif insight_type == "region_comparison":
        for arm in summary:
            part = (
                rows[rows["region"] == arm["region"]]
                if arm["region"] != "other regions"
                else (rows[rows["region"] != summary[0]["region"]])
            )
            found += _arm_sums(arm, part)
        found += _ratio(summary, metric, effect_size)
    elif insight_type == "icp_comparison":
        for arm in summary:
            tier = arm["tier"]
            part = rows[rows["tier"] == tier] if tier != "other tiers" else rows[rows["tier"] != summary[0]["tier"]]
            found += _arm_sums(arm, part)
        found += _ratio(summary, metric, effect_size)
    elif insight_type == "anomaly":
        s = summary[0]
        days = pd.to_datetime(rows["metric_time__day"]).dt.date.astype(str)
        week = rows[(days >= s["week_start"]) & (days <= s["week_end"])]
        if not _close(_sum(week, s["metric"]), s["observed"]):
            found.append(f"observed {s['observed']} ≠ sum of the week's rows {_sum(week, s['metric'])}")
        baseline = sum(s["baseline_week_totals"]) / s["baseline_weeks"]
        if not _close(baseline, s["expected"]):
            found.append(f"expected {s['expected']} ≠ mean of the baseline weeks {baseline}")
        if not _close(_sum(rows, s["metric"]), s["observed"] + sum(s["baseline_week_totals"])):
            found.append("rows do not add up to the baseline weeks plus the tested week")
        if effect_size is not None and s["expected"] and not _close(effect_size, s["observed"] / s["expected"] - 1):
            found.append("effect is not observed / expected − 1")
    elif insight_type == "budget_pacing":
        s = summary[0]
        if not _close(_sum(rows, "spend"), s["spend"]):
            found.append(f"spend {s['spend']} ≠ sum of the rows {_sum(rows, 'spend')}")
        if not _close(s["budget"], s["daily_budget_usd"] * s["days"]):
            found.append("budget ≠ daily budget × days")
        if effect_size is not None and not _close(effect_size, s["spend"] / s["budget"]):
            found.append("effect is not spend / budget")
    elif insight_type in ("experiment_winner", "holdout_lift"):
        for arm in summary:
            if arm.get("arm") == "holdout":
                part = rows[rows["is_holdout"].fillna(False).astype(bool)]
            else:
                ids = str(arm["variant_id"]).split("+")
                part = rows[rows["variant_id"].astype(str).isin(ids) & ~rows["is_holdout"].fillna(False).astype(bool)]
            for column in (
                "sends",
                "clicks",
                "recipients",
                "converted_recipients",
                "assigned_units",
                "observed_units",
                "sent_units",
                "converted_units",
            ):
                if column in arm and not _close(_sum(part, column), arm[column]):
                    found.append(f"{arm['arm']}: {column} {arm[column]} ≠ sum of its rows {_sum(part, column)}")
        found += _ratio(summary, metric, effect_size)
    elif insight_type == "lookalike_degradation":
        by_id = rows.set_index("model_run_id")
        for arm in summary:
            if not _close(by_id.at[arm["model_run_id"], "recall_at_10"], arm["recall_at_10"]):
                found.append(f"{arm['fit']}: recall differs from ml.model_runs")
        if effect_size is not None and not _close(effect_size, summary[0]["recall_at_10"] - summary[1]["recall_at_10"]):
            found.append("effect is not the recall difference")
    return found


def _arm_sums(arm: dict, part: pd.DataFrame) -> list[str]:
    out = []
    for column in ("sessions", "conversions", "new_customers", "revenue", "cost"):
        if column in arm and column in part and not _close(_sum(part, column), arm[column]):
            out.append(f"{arm['arm']}: {column} {arm[column]} ≠ sum of its rows {_sum(part, column)}")
    return out


def _ratio(summary: list[dict], metric: str | None, effect_size: float | None) -> list[str]:
    if effect_size is None or metric is None or len(summary) != 2:
        return []
    a, b = summary[0].get(metric), summary[1].get(metric)
    if a is None or not b:
        return [f"summary has no {metric} to compare"]
    return [] if _close(effect_size, a / b) else [f"effect {effect_size} ≠ {metric} ratio {a / b}"]
