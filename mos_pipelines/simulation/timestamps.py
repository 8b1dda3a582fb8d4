"""Time in the simulated world: seconds since midnight UTC of the start date, formatted per source."""

from __future__ import annotations

import datetime
from typing import Literal

import numpy as np
import pandas as pd

DAY_SECONDS = 86_400


Unit = Literal["s", "ms"]


def _datetimes(start: datetime.date, seconds: np.ndarray, unit: Unit) -> np.ndarray:
    base = np.datetime64(start.isoformat(), unit)
    scale = 1000 if unit == "ms" else 1
    return base + np.round(np.asarray(seconds, dtype=float) * scale).astype(np.int64).astype(f"timedelta64[{unit}]")


def iso_utc(start: datetime.date, seconds: np.ndarray, milliseconds: bool = False) -> list[str]:
    """ISO 8601 UTC with a Z: 2026-01-05T14:03:27Z (or .123Z with milliseconds)."""
    unit: Unit = "ms" if milliseconds else "s"
    return [s + "Z" for s in np.datetime_as_string(_datetimes(start, seconds, unit), unit=unit).tolist()]


def formatted(start: datetime.date, seconds: np.ndarray, fmt: str) -> list[str]:
    """Timestamps in a strftime format, e.g. HubSpot's ``%Y-%m-%d %H:%M``."""
    if len(seconds) == 0:
        return []
    return pd.DatetimeIndex(_datetimes(start, seconds, "s")).strftime(fmt).tolist()


def day_of(start: datetime.date, day: int) -> datetime.date:
    return start + datetime.timedelta(days=day)
