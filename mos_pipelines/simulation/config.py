"""What the caller asks for (``WorldConfig``) and what it gets back (``WorldSummary``)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class WorldConfig:
    """Size and seed of a simulated world. The same config always yields byte-identical files."""

    seed: int = 7
    people: int = 1000
    days: int = 30
    start_date: datetime.date = datetime.date(2026, 1, 1)  # fixed: nothing reads the wall clock
    scenario: Path | None = None  # None -> the bundled scenarios/default.yaml

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"WorldConfig.seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.people, int) or self.people < 1:
            raise ValueError(f"WorldConfig.people must be a positive integer, got {self.people!r}")
        if not isinstance(self.days, int) or self.days < 1:
            raise ValueError(f"WorldConfig.days must be a positive integer, got {self.days!r}")
        if not isinstance(self.start_date, datetime.date) or isinstance(self.start_date, datetime.datetime):
            raise ValueError(f"WorldConfig.start_date must be a datetime.date, got {self.start_date!r}")


@dataclass(frozen=True)
class WorldSummary:
    """What ``generate_world`` wrote."""

    landing_dir: Path
    truth_dir: Path
    files: tuple[str, ...]  # landing files written, relative to landing_dir
    rows_per_source: dict[str, int]  # non-blank records written per landing source
    files_per_source: dict[str, int]
    dirty_rows: dict[str, int]  # "<source>.<kind>" -> rows injected on purpose
    seconds: float
    truth_files: tuple[str, ...] = field(default=())

    @property
    def files_written(self) -> int:
        return len(self.files)
