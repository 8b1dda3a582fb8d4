"""Landing files: their records, why each record is (in)valid, and writing them atomically.

A ``LandingFile`` carries, next to every record, its kind: ``valid``, ``duplicate`` (valid, repeats
a key seen before), ``late`` (valid, timestamped before the file's day) or the name of the way it
breaks the contract (``bad_json``, ``wrong_field_count``, ...). The manifest counts come from these
kinds, so they are exact by construction; the tests recount them from the files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

VALID, DUPLICATE, LATE = "valid", "duplicate", "late"
LOADABLE = (VALID, DUPLICATE, LATE)


@dataclass
class LandingFile:
    path: str  # relative to landing/, with forward slashes
    source: str  # landing source (contracts.SOURCES key)
    header: tuple[str, ...] | None  # CSV header; None for JSONL
    records: list  # CSV: list of field lists; JSONL: list of lines (no newline)
    kinds: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.kinds:
            self.kinds = [VALID] * len(self.records)

    @property
    def is_csv(self) -> bool:
        return self.header is not None

    def render(self) -> bytes:
        if self.header is None:
            return "".join(line + "\n" for line in self.records).encode("utf-8")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.records)
        return buffer.getvalue().encode("utf-8")

    def first_line_numbers(self) -> list[int]:
        """Physical line of each record (no field holds a newline, so one line per record)."""
        offset = 2 if self.is_csv else 1
        return [i + offset for i in range(len(self.records))]


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    source: str
    sha256: str
    rows_total: int
    rows_valid: int
    rows_malformed: int
    rows_duplicate: int
    rows_late: int


def write_landing_file(landing_dir: Path, scratch_dir: Path, file: LandingFile) -> ManifestEntry:
    """Write the file (via a scratch copy and a rename, so readers never see half a file)."""
    content = file.render()
    target = landing_dir / file.path
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = scratch_dir / file.path.replace("/", "__")
    scratch.write_bytes(content)
    os.replace(scratch, target)
    kinds = file.kinds
    return ManifestEntry(
        path=file.path,
        source=file.source,
        sha256=hashlib.sha256(content).hexdigest(),
        rows_total=len(kinds),
        rows_valid=sum(k in LOADABLE for k in kinds),
        rows_malformed=sum(k not in LOADABLE for k in kinds),
        rows_duplicate=kinds.count(DUPLICATE),
        rows_late=kinds.count(LATE),
    )
