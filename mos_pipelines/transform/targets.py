"""Where each ``dbt build`` of a run writes its artifacts, and the parse state it starts from.

dagster-dbt gives every invocation a folder of its own; by default under the project's ``target/``, where the
folders of every run of every ``MOS_HOME`` pile up (gigabytes after a day of test runs), and each starts from the
``partial_parse.msgpack`` of ``mos prepare``. dbt re-parses the whole project (≈ 11 s of CPU here, against ≈ 4 s
partially) when the profile's connection differs from the one of that parse, and the warehouse path is part of it:
so every invocation against any warehouse but ``./.mos`` parsed everything, four times a build. Here the folders
live under ``$MOS_HOME/dbt/target/`` (the newest ``KEEP`` kept), and each starts from the parse state the
previous invocation against this warehouse left: one full parse per ``MOS_HOME`` and change of vars or project.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

PARSE_STATE = "partial_parse.msgpack"
KEEP = 12  # invocation folders kept per MOS_HOME (a full build makes four)


def targets_dir(mos_home: Path) -> Path:
    return mos_home / "dbt" / "target"


def invocation_target(mos_home: Path, step: str, run_id: str) -> Path:
    """A fresh folder for one invocation, holding this warehouse's latest parse state when there is one (dagster-dbt
    then leaves it: it copies the project's only into a folder without one)."""
    root = targets_dir(mos_home)
    target = root / f"{re.sub(r'[^A-Za-z0-9_]+', '_', step)}-{run_id[:8]}"
    suffix = 1
    while target.exists():
        suffix += 1
        target = root / f"{re.sub(r'[^A-Za-z0-9_]+', '_', step)}-{run_id[:8]}-{suffix}"
    target.mkdir(parents=True)
    state = root / PARSE_STATE
    if state.exists():
        shutil.copyfile(state, target / PARSE_STATE)
    return target


def keep_parse_state(mos_home: Path, target: Path) -> None:
    """After an invocation: its parse state becomes the next one's start; older folders beyond ``KEEP`` go."""
    root = targets_dir(mos_home)
    produced = target / PARSE_STATE
    if produced.exists():
        staged = root / f".{PARSE_STATE}.tmp"
        shutil.copyfile(produced, staged)
        staged.replace(root / PARSE_STATE)
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in folders[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
