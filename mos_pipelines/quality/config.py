"""The gate thresholds (``quality/thresholds.yaml``), validated into typed settings.

Any problem raises ``QualityConfigError`` naming the file and the key, so a typo in a threshold
cannot silently turn a gate off.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mos_pipelines.configfile import read_mapping
from mos_pipelines.settings import PROJECT_ROOT

QUALITY_DIR = PROJECT_ROOT / "quality"
THRESHOLDS_FILE = QUALITY_DIR / "thresholds.yaml"
SUITES_DIR = QUALITY_DIR / "suites"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class QualityConfigError(ValueError):
    """The thresholds file is unreadable or invalid; the message names the file and the key."""


@dataclass(frozen=True)
class ExpectedDay:
    date: datetime.date
    reason: str


@dataclass(frozen=True)
class ConsentTarget:
    table: str  # schema.table of the customers selected for activation
    purpose: str


@dataclass(frozen=True)
class ConsentSettings:
    consent_table: str
    customer_column: str
    purpose_column: str
    status_column: str | None
    allowed_statuses: tuple[str, ...]
    targets: tuple[ConsentTarget, ...]


@dataclass(frozen=True)
class QualityConfig:
    missing_identifiers_max_rate: float
    missing_identifiers_min_rows: int
    duplicate_customers_max_rate: float
    duplicate_customers_min_customers: int
    volume_max_change: float
    volume_noise_z: float
    volume_min_history_days: int
    volume_expected_days: tuple[ExpectedDay, ...]
    volume_min_events: int
    min_spend: float
    consent: ConsentSettings
    source: Path


class _Reader:
    def __init__(self, path: Path, data: Any) -> None:
        self.path = path
        if not isinstance(data, dict):
            self.fail("", "expected a mapping at the top level")
        self.data = data

    def fail(self, key: str, message: str) -> None:
        raise QualityConfigError(f"{self.path}: {key or 'top level'}: {message}")

    def section(self, name: str, allowed: tuple[str, ...]) -> dict:
        value = self.data.get(name)
        if not isinstance(value, dict):
            self.fail(name, "missing or not a mapping")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            self.fail(name, f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})")
        return value

    def number(self, section: dict, name: str, key: str, low: float | None = None, high: float | None = None) -> float:
        value = section.get(key)
        where = f"{name}.{key}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(where, f"expected a number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(where, f"{value!r} is outside [{low}, {high}]")
        return float(value)

    def count(self, section: dict, name: str, key: str) -> int:
        """A whole number >= 1 (a minimum number of rows)."""
        value = section.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(f"{name}.{key}", f"expected a whole number >= 1, got {value!r}")
        return value

    def relation(self, where: str, value: Any) -> str:
        parts = value.split(".") if isinstance(value, str) else []
        if len(parts) != 2 or not all(IDENTIFIER.match(p) for p in parts):
            self.fail(where, f"expected schema.table, got {value!r}")
        return value

    def column(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not IDENTIFIER.match(value):
            self.fail(where, f"expected a column name, got {value!r}")
        return value


def _expected_days(r: _Reader, value: Any) -> tuple[ExpectedDay, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        r.fail("event_volume.expected_days", "expected a list of {date, reason}")
    days = []
    for i, item in enumerate(value):
        where = f"event_volume.expected_days[{i}]"
        if not isinstance(item, dict) or set(item) != {"date", "reason"}:
            r.fail(where, f"expected {{date: YYYY-MM-DD, reason: ...}}, got {item!r}")
        day = item["date"]
        if isinstance(day, str):
            try:
                day = datetime.date.fromisoformat(day)
            except ValueError:
                r.fail(where + ".date", f"not a date: {day!r}")
        if not isinstance(day, datetime.date) or isinstance(day, datetime.datetime):
            r.fail(where + ".date", f"not a date: {day!r}")
        if not isinstance(item["reason"], str) or not item["reason"].strip():
            r.fail(where + ".reason", "say why the day is expected to differ")
        days.append(ExpectedDay(day, item["reason"].strip()))
    return tuple(days)


def _consent(r: _Reader) -> ConsentSettings:
    name = "consent_for_activation"
    section = r.section(name, ("consent_table", "customer_column", "purpose_column", "status_column",
                               "allowed_statuses", "targets"))
    targets_value = section.get("targets") or []
    if not isinstance(targets_value, list):
        r.fail(f"{name}.targets", "expected a list of {table, purpose}")
    targets = []
    for i, item in enumerate(targets_value):
        where = f"{name}.targets[{i}]"
        if not isinstance(item, dict) or set(item) != {"table", "purpose"}:
            r.fail(where, f"expected {{table: schema.table, purpose: ...}}, got {item!r}")
        if not isinstance(item["purpose"], str) or not item["purpose"]:
            r.fail(where + ".purpose", "expected a consent purpose")
        targets.append(ConsentTarget(r.relation(where + ".table", item["table"]), item["purpose"]))
    status_column = section.get("status_column")
    statuses = section.get("allowed_statuses") or []
    if status_column is not None:
        status_column = r.column(f"{name}.status_column", status_column)
        if not isinstance(statuses, list) or not statuses or not all(isinstance(s, str) for s in statuses):
            r.fail(f"{name}.allowed_statuses", "list the statuses that allow activation, e.g. [granted]")
    return ConsentSettings(
        consent_table=r.relation(f"{name}.consent_table", section.get("consent_table")),
        customer_column=r.column(f"{name}.customer_column", section.get("customer_column")),
        purpose_column=r.column(f"{name}.purpose_column", section.get("purpose_column")),
        status_column=status_column,
        allowed_statuses=tuple(statuses),
        targets=tuple(targets),
    )


def load_config(path: Path = THRESHOLDS_FILE) -> QualityConfig:
    """Read and validate the thresholds file."""
    data = read_mapping(path, "quality thresholds", QualityConfigError)
    r = _Reader(path, data)
    known = ("missing_identifiers", "duplicate_customers", "event_volume", "ad_spend", "consent_for_activation")
    unknown = sorted(set(data) - set(known))
    if unknown:
        r.fail("", f"unknown section(s) {', '.join(unknown)} (known: {', '.join(known)})")
    missing = r.section("missing_identifiers", ("max_rate", "min_rows"))
    duplicates = r.section("duplicate_customers", ("max_rate", "min_customers"))
    volume = r.section("event_volume", ("max_change", "noise_z", "min_history_days", "expected_days", "min_events"))
    spend = r.section("ad_spend", ("min_spend",))
    history = volume.get("min_history_days")
    if isinstance(history, bool) or not isinstance(history, int) or history < 8:
        r.fail("event_volume.min_history_days", f"expected an integer >= 8 (a week plus a day), got {history!r}")
    return QualityConfig(
        missing_identifiers_max_rate=r.number(missing, "missing_identifiers", "max_rate", 0, 1),
        missing_identifiers_min_rows=r.count(missing, "missing_identifiers", "min_rows"),
        duplicate_customers_max_rate=r.number(duplicates, "duplicate_customers", "max_rate", 0, 1),
        duplicate_customers_min_customers=r.count(duplicates, "duplicate_customers", "min_customers"),
        volume_max_change=r.number(volume, "event_volume", "max_change", 0),
        volume_noise_z=r.number(volume, "event_volume", "noise_z", 0),
        volume_min_history_days=history,
        volume_expected_days=_expected_days(r, volume.get("expected_days")),
        volume_min_events=r.count(volume, "event_volume", "min_events"),
        min_spend=r.number(spend, "ad_spend", "min_spend"),
        consent=_consent(r),
        source=path,
    )
