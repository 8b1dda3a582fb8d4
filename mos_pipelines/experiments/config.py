"""``config/experiments.yaml``: assignment, goals, bandit, budget and statistics settings, validated.

Every key is optional (the bundled file shows the defaults); an invalid value raises
``ExperimentsConfigError`` naming the file and the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mos_pipelines.configfile import At, choice, integer, number, read_mapping, text
from mos_pipelines.settings import PROJECT_ROOT

CONFIG_FILE = PROJECT_ROOT / "config" / "experiments.yaml"
GOALS = ("click", "conversion", "revenue")
SEGMENTS = ("region", "none")


class ExperimentsConfigError(ValueError):
    """The experiments config is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class AssignmentSettings:
    salt: str = "mos-experiments-v1"
    holdout_share: float = 0.10


@dataclass(frozen=True)
class BanditSettings:
    segment: str = "region"
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    pooling_exposures: float = 100.0
    floor: float = 0.02
    max_daily_change: float = 0.25
    min_exposures: int = 100
    draws: int = 4000
    random_seed: int = 7
    conversion_window_days: int = 7


@dataclass(frozen=True)
class BudgetSettings:
    total_usd: float = 10000.0
    period_days: int = 7
    lookback_days: int = 28
    channels: tuple[str, ...] = ("paid_search", "paid_social", "linkedin", "display")
    floor: float = 0.05
    max_daily_change: float = 0.10
    min_share: dict[str, float] = field(default_factory=dict)
    max_share: dict[str, float] = field(default_factory=dict)
    draws: int = 4000
    random_seed: int = 11

    def bounds(self) -> tuple[list[float], list[float]]:
        """Per channel (in ``channels`` order): the lowest and highest share allowed."""
        low = [max(self.floor, self.min_share.get(c, 0.0)) for c in self.channels]
        high = [self.max_share.get(c, 1.0) for c in self.channels]
        return low, high


@dataclass(frozen=True)
class StatsSettings:
    alpha: float = 0.05
    power: float = 0.80
    sequential_tau: float = 0.02


@dataclass(frozen=True)
class ExperimentOverride:
    goal: str | None = None
    holdout_share: float | None = None


@dataclass(frozen=True)
class ExperimentsConfig:
    assignment: AssignmentSettings = AssignmentSettings()
    goals: dict[str, str] = field(default_factory=lambda: {
        "engagement": "click", "registration": "click", "conversion": "conversion", "default": "click"})
    experiments: dict[str, ExperimentOverride] = field(default_factory=dict)
    bandit: BanditSettings = BanditSettings()
    budget: BudgetSettings = BudgetSettings()
    stats: StatsSettings = StatsSettings()
    source: Path | None = None

    def goal_for(self, experiment_id: str, objective: str | None) -> str:
        override = self.experiments.get(experiment_id)
        if override and override.goal:
            return override.goal
        return self.goals.get(objective or "", self.goals.get("default", "click"))

    def holdout_share_for(self, experiment_id: str) -> float:
        override = self.experiments.get(experiment_id)
        if override and override.holdout_share is not None:
            return override.holdout_share
        return self.assignment.holdout_share

    def fingerprint(self) -> str:
        """Changes when any setting changes (recorded with every allocation)."""
        data = {k: v for k, v in asdict(self).items() if k != "source"}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def config_path() -> Path:
    """``MOS_EXPERIMENTS_CONFIG`` if set, else the bundled ``config/experiments.yaml``."""
    return Path(os.environ.get("MOS_EXPERIMENTS_CONFIG") or CONFIG_FILE)


def load_config(path: Path | None = None) -> ExperimentsConfig:
    path = Path(path or config_path())
    return parse_config(read_mapping(path, "experiments config", ExperimentsConfigError), path)


def parse_config(data: Any, path: Path | str = "<config>") -> ExperimentsConfig:
    """Validate a config mapping (as read from YAML)."""
    at = At(str(path), "", ExperimentsConfigError)
    top = _mapping(at, data, ("assignment", "goals", "experiments", "bandit", "budget", "stats"))

    a = _mapping(at / "assignment", top.get("assignment"), ("salt", "holdout_share"))
    assignment = AssignmentSettings(
        salt=text(at / "assignment" / "salt", a.get("salt", AssignmentSettings.salt)),
        holdout_share=_share(at / "assignment" / "holdout_share", a.get("holdout_share", AssignmentSettings.holdout_share),
                             high=0.9),
    )

    goals = dict(ExperimentsConfig().goals)
    for objective, goal in _mapping(at / "goals", top.get("goals"), None).items():
        goals[str(objective)] = choice(at / "goals" / str(objective), goal, GOALS)

    experiments = {}
    for experiment_id, spec in _mapping(at / "experiments", top.get("experiments"), None).items():
        here = at / "experiments" / str(experiment_id)
        spec = _mapping(here, spec, ("goal", "holdout_share"))
        experiments[str(experiment_id)] = ExperimentOverride(
            goal=choice(here / "goal", spec["goal"], GOALS) if "goal" in spec else None,
            holdout_share=_share(here / "holdout_share", spec["holdout_share"], high=0.9) if "holdout_share" in spec else None,
        )

    b = _mapping(at / "bandit", top.get("bandit"), tuple(BanditSettings.__dataclass_fields__))
    d = BanditSettings()
    bandit = BanditSettings(
        segment=choice(at / "bandit" / "segment", b.get("segment", d.segment), SEGMENTS),
        prior_alpha=_positive(at / "bandit" / "prior_alpha", b.get("prior_alpha", d.prior_alpha)),
        prior_beta=_positive(at / "bandit" / "prior_beta", b.get("prior_beta", d.prior_beta)),
        pooling_exposures=_non_negative(at / "bandit" / "pooling_exposures",
                                        b.get("pooling_exposures", d.pooling_exposures)),
        floor=_share(at / "bandit" / "floor", b.get("floor", d.floor), high=0.5),
        max_daily_change=_share(at / "bandit" / "max_daily_change", b.get("max_daily_change", d.max_daily_change),
                                low_open=True),
        min_exposures=integer(at / "bandit" / "min_exposures", b.get("min_exposures", d.min_exposures), 0),
        draws=integer(at / "bandit" / "draws", b.get("draws", d.draws), 100),
        random_seed=integer(at / "bandit" / "random_seed", b.get("random_seed", d.random_seed), 0),
        conversion_window_days=integer(at / "bandit" / "conversion_window_days",
                                        b.get("conversion_window_days", d.conversion_window_days), 1),
    )

    g = _mapping(at / "budget", top.get("budget"), tuple(BudgetSettings.__dataclass_fields__))
    db = BudgetSettings()
    channels = g.get("channels", list(db.channels))
    if not isinstance(channels, list) or not channels or not all(isinstance(c, str) and c for c in channels):
        (at / "budget" / "channels").fail(f"expected a non-empty list of channel names, got {channels!r}")
    if len(set(channels)) != len(channels):
        (at / "budget" / "channels").fail("channel names must be unique")
    shares = {}
    for key in ("min_share", "max_share"):
        values = _mapping(at / "budget" / key, g.get(key, getattr(db, key) if key == "min_share" else {}), None)
        for channel, value in values.items():
            if channel not in channels:
                (at / "budget" / key / str(channel)).fail(f"not one of budget.channels ({', '.join(channels)})")
            values[channel] = _share(at / "budget" / key / str(channel), value)
        shares[key] = {str(k): float(v) for k, v in values.items()}
    budget = BudgetSettings(
        total_usd=_positive(at / "budget" / "total_usd", g.get("total_usd", db.total_usd)),
        period_days=integer(at / "budget" / "period_days", g.get("period_days", db.period_days), 1),
        lookback_days=integer(at / "budget" / "lookback_days", g.get("lookback_days", db.lookback_days), 1),
        channels=tuple(channels),
        floor=_share(at / "budget" / "floor", g.get("floor", db.floor), high=1.0),
        max_daily_change=_share(at / "budget" / "max_daily_change", g.get("max_daily_change", db.max_daily_change),
                                low_open=True),
        min_share=shares["min_share"],
        max_share=shares["max_share"],
        draws=integer(at / "budget" / "draws", g.get("draws", db.draws), 100),
        random_seed=integer(at / "budget" / "random_seed", g.get("random_seed", db.random_seed), 0),
    )
    low, high = budget.bounds()
    for channel, lo, hi in zip(budget.channels, low, high):
        if lo > hi:
            (at / "budget" / "max_share" / channel).fail(f"{hi:g} is below the channel's minimum share {lo:g}")
    if sum(low) > 1 + 1e-9:
        (at / "budget").fail(f"floor and min_share add up to {sum(low):g} > 1: no allocation can satisfy them")
    if sum(high) < 1 - 1e-9:
        (at / "budget" / "max_share").fail(f"max shares add up to {sum(high):g} < 1: the budget cannot be spent")

    s = _mapping(at / "stats", top.get("stats"), tuple(StatsSettings.__dataclass_fields__))
    ds = StatsSettings()
    stats = StatsSettings(
        alpha=_share(at / "stats" / "alpha", s.get("alpha", ds.alpha), high=0.5, low_open=True),
        power=_share(at / "stats" / "power", s.get("power", ds.power), high=0.999, low_open=True),
        sequential_tau=_positive(at / "stats" / "sequential_tau", s.get("sequential_tau", ds.sequential_tau)),
    )
    return ExperimentsConfig(assignment=assignment, goals=goals, experiments=experiments, bandit=bandit,
                             budget=budget, stats=stats, source=Path(path) if str(path) != "<config>" else None)


def _mapping(at: At, value: Any, allowed: tuple[str, ...] | None) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        at.fail(f"expected a mapping, got {value!r}")
    if allowed is not None:
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            (at / unknown[0]).fail(f"unknown key (expected one of: {', '.join(allowed)})")
    return dict(value)


def _share(at: At, value: Any, high: float = 1.0, low_open: bool = False) -> float:
    x = number(at, value)
    if x < 0 or x > high or (low_open and x == 0):
        at.fail(f"must be {'>' if low_open else '>='} 0 and <= {high:g}, got {value!r}")
    return x


def _positive(at: At, value: Any) -> float:
    x = number(at, value)
    if x <= 0:
        at.fail(f"must be > 0, got {value!r}")
    return x


def _non_negative(at: At, value: Any) -> float:
    x = number(at, value)
    if x < 0:
        at.fail(f"must be >= 0, got {value!r}")
    return x
