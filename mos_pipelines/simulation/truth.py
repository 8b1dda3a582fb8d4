"""The ground truth behind the landing files, written to ``$MOS_HOME/truth/``.

Files: identity_truth.csv, people.csv, accounts.csv, propensity_model.json, sessions.parquet,
orders.parquet, email_sends.parquet, ad_spend.parquet, arm_rates.csv, channel_rates.csv,
planted_effects.json, expected_daily.csv (simulation/expected.py), notes_facts.csv, fx_rates.csv, dirty_rows.csv and manifest.json.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mos_pipelines.simulation.config import WorldConfig
from mos_pipelines.simulation.geography import FX_USD_PER_UNIT
from mos_pipelines.simulation.scenario import Scenario
from mos_pipelines.simulation.writers import VALID, LandingFile, ManifestEntry

# Keys on which a repeated valid record counts as a duplicate (rows_duplicate in the manifest).
DUPLICATE_KEYS = {"events": ["messageId"], "orders": ["order_id"], "email": ["message_id", "event"]}


class TruthWriter:
    """Writes truth files into one folder and remembers their names."""

    def __init__(self, truth_dir: Path) -> None:
        self.dir = truth_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.written: list[str] = []

    def csv(self, name: str, frame: pd.DataFrame) -> None:
        frame.to_csv(self.dir / name, index=False, lineterminator="\n")
        self.written.append(name)

    def parquet(self, name: str, frame: pd.DataFrame) -> None:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), self.dir / name, compression="zstd")
        self.written.append(name)

    def json(self, name: str, data: object) -> None:
        (self.dir / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self.written.append(name)


def fx_rates() -> pd.DataFrame:
    return pd.DataFrame({"currency": list(FX_USD_PER_UNIT), "usd_per_unit": list(FX_USD_PER_UNIT.values())})


def dirty_rows(file: LandingFile) -> list[tuple[str, int, str]]:
    """Every record of a file that is not plainly valid: (file, physical line, kind)."""
    return [(file.path, line, kind) for line, kind in zip(file.first_line_numbers(), file.kinds) if kind != VALID]


def manifest(config: WorldConfig, scenario: Scenario, entries: list[ManifestEntry]) -> dict[str, object]:
    """Config, scenario and per-file record counts; exact with respect to ingestion/contracts.py."""
    totals: dict[str, dict[str, int]] = {}
    for e in entries:
        t = totals.setdefault(
            e.source,
            {"files": 0, "rows_total": 0, "rows_valid": 0, "rows_malformed": 0, "rows_duplicate": 0, "rows_late": 0},
        )
        t["files"] += 1
        for key in ("rows_total", "rows_valid", "rows_malformed", "rows_duplicate", "rows_late"):
            t[key] += getattr(e, key)
    return {
        "generator": "mos_pipelines.simulation",
        "config": {
            "seed": config.seed,
            "people": config.people,
            "days": config.days,
            "start_date": config.start_date.isoformat(),
            "end_date": (config.start_date + datetime.timedelta(days=config.days - 1)).isoformat(),
            "scenario": {"name": scenario.name, "file": scenario.path.name, "sha256": scenario.sha256},
        },
        "row_kinds": {
            "rows_total": "non-blank records in the file",
            "rows_valid": "records that satisfy the landing contract and load into raw (incl. duplicates, late)",
            "rows_malformed": "records the contract rejects (quarantined)",
            "rows_duplicate": "valid records whose duplicate key already appeared (earlier in the file or in an "
            "earlier file of the source, files in path order)",
            "rows_late": "valid, non-duplicate events whose timestamp is on a day before the file's day",
        },
        "duplicate_keys": DUPLICATE_KEYS,
        "totals": totals,
        "files": [asdict(e) for e in entries],
    }
