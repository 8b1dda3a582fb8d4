"""``config/insights.yaml`` (or ``$MOS_INSIGHTS_CONFIG``): candidate families, thresholds, readers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mos_pipelines.configfile import read_mapping
from mos_pipelines.settings import PROJECT_ROOT

DEFAULT_CONFIG = PROJECT_ROOT / "config" / "insights.yaml"
FAMILIES = ("channel_comparison", "region_comparison", "anomaly", "budget_pacing", "lookalike_degradation",
            "experiments")


class InsightsConfigError(ValueError):
    """The insights config is unreadable or invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Reader:
    reader_id: str
    name: str
    objectives: tuple[str, ...]
    channels: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    daily_cap: int = 5


@dataclass(frozen=True)
class InsightsConfig:
    source: Path
    window_days: int
    confidence_level: float
    max_q_value: float
    min_relative_effect: float
    min_impact_usd: float
    min_events: int
    min_orders: int
    families: dict[str, dict[str, Any]]
    readers: tuple[Reader, ...]
    notifications: dict[str, float]
    report_top: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def family(self, name: str) -> dict[str, Any]:
        return self.families.get(name, {})

    def enabled(self, name: str) -> bool:
        return bool(self.family(name).get("enabled", True))


def config_path() -> Path:
    return Path(os.environ.get("MOS_INSIGHTS_CONFIG", DEFAULT_CONFIG))


def load_config(path: Path | None = None) -> InsightsConfig:
    file = Path(path) if path is not None else config_path()
    data = read_mapping(file, "insights config", InsightsConfigError)

    def number(key: str, default: float, low: float, high: float | None = None) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or (high is not None and value > high):
            bound = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            raise InsightsConfigError(f"insights config {file}: key '{key}': expected a number {bound}, got {value!r}")
        return float(value)

    families = {}
    for name in FAMILIES:
        spec = data.get(name, {}) or {}
        if not isinstance(spec, dict):
            raise InsightsConfigError(f"insights config {file}: key '{name}': expected a mapping")
        families[name] = spec
    readers = []
    seen = set()
    for i, spec in enumerate(data.get("readers") or []):
        at = f"insights config {file}: key 'readers[{i}]'"
        if not isinstance(spec, dict) or not spec.get("id"):
            raise InsightsConfigError(f"{at}: expected a mapping with an 'id'")
        if spec["id"] in seen:
            raise InsightsConfigError(f"{at}.id: reader '{spec['id']}' is listed twice")
        seen.add(spec["id"])
        objectives = spec.get("objectives") or ([spec["objective"]] if spec.get("objective") else [])
        if not objectives:
            raise InsightsConfigError(f"{at}.objectives: every reader needs at least one objective")
        cap = spec.get("daily_cap", 5)
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise InsightsConfigError(f"{at}.daily_cap: expected a whole number >= 0, got {cap!r}")
        readers.append(Reader(str(spec["id"]), str(spec.get("name", spec["id"])), tuple(objectives),
                              tuple(spec.get("channels") or ()), tuple(spec.get("regions") or ()), cap))
    notifications = {"renotify_min_change": 0.2, "not_useful_factor": 0.5, "useful_factor": 1.25,
                     "other_objective_relevance": 0.3, "min_score": 0.0, **(data.get("notifications") or {})}
    return InsightsConfig(
        source=file,
        window_days=int(number("window_days", 28, 7)),
        confidence_level=number("confidence_level", 0.95, 0.5, 0.999),
        max_q_value=number("max_q_value", 0.05, 0.0, 1.0),
        min_relative_effect=number("min_relative_effect", 0.2, 0.0),
        min_impact_usd=number("min_impact_usd", 0.0, 0.0),
        min_events=int(number("min_events", 5, 1)),
        min_orders=int(number("min_orders", 20, 1)),
        families=families,
        readers=tuple(readers),
        notifications={k: float(v) for k, v in notifications.items()},
        report_top=int((data.get("report") or {}).get("top", 10)),
        raw=data,
    )
