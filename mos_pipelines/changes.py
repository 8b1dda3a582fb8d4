"""Nothing changed → nothing runs: which assets of a build must run, from what each one consumed last time.

An asset runs when one of these holds, else it is left out of the run with the reason "inputs unchanged since
run X" (the run that wrote what it holds now):

- it was never materialized, or its table is missing from the warehouse;
- one of its outside inputs changed: a **fingerprint** (the files of its landing folder, the configuration, the
  code, the dbt project, an operational store…) differs from the one recorded on the run that last materialized
  it (runs launched by ``mos run`` and the schedule carry every fingerprint as a run tag ``mos/fp/<name>``; a run
  without the tag counts as changed);
- its code version changed (dbt models: the SQL's checksum);
- an upstream asset runs in this run, or its data version is not the one this asset read (it was materialized since
  with different data, e.g. by a ``--select`` run, or a run failed before reaching this asset).

Data versions are Dagster's: an ingestion asset states its own (its source's loaded files, so a run that loads
nothing changes nothing downstream), dbt models get a version derived from their SQL and their inputs' versions,
other assets a new one per run. An asset that only sweeps what its parents bring (the erasure step) does not
pass "runs" on to its children (``Node.propagates``): its children run when their own inputs do, or next time
when its data version changed.

Fingerprints are cheap and deterministic: names, sizes and modification times of landing files (the loader's
ledger still decides by content hash which files are new), the bytes of configuration and code files.
Plain logic: no Dagster, no warehouse (``mos_pipelines.defs.changes`` reads those and calls ``plan``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path

FINGERPRINT_TAG = "mos/fp/"  # run tag prefix: ``mos/fp/<name>`` = the fingerprint the run was launched with


def _digest(lines: Iterable[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def landing_fingerprint(folder: Path) -> str:
    """Relative path, size and modification time of every file under ``folder`` (dot files ignored, as the loader
    does); the same value for an absent or empty folder."""
    if not folder.is_dir():
        return _digest([])
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        stat = path.stat()
        lines.append(f"{path.relative_to(folder).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}")
    return _digest(lines)


def files_fingerprint(paths: Iterable[Path], suffixes: tuple[str, ...] = ()) -> str:
    """The bytes of every file of ``paths`` (folders walked; only ``suffixes`` when given), with their names."""
    lines = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for path in files:
            if suffixes and path.suffix not in suffixes or "__pycache__" in path.parts:
                continue
            lines.append(f"{path.as_posix()}\t{hashlib.sha256(path.read_bytes()).hexdigest()}")
    return _digest(lines)


def value_fingerprint(*values: str) -> str:
    return _digest(values)


@dataclass(frozen=True)
class Node:
    """One asset of the build: its upstream assets (within the build), the fingerprints it reads, its code version."""

    parents: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()  # fingerprint names
    code_version: str | None = None  # None: not versioned (only its fingerprints and parents count)
    propagates: bool = True  # False: running because a parent runs does not make its children run


@dataclass(frozen=True)
class Last:
    """An asset's latest materialization: its run, its storage id, what it read."""

    run_id: str
    storage_id: int
    code_version: str | None = None
    data_version: str | None = None
    fingerprints: Mapping[str, str] = field(default_factory=dict)  # the run's fingerprints (name -> value)
    parents: Mapping[str, str | None] = field(default_factory=dict)  # parent -> data version it read


@dataclass
class Plan:
    """What runs (key -> why) and what does not (key -> the run whose materialization stays current)."""

    run: dict[str, str] = field(default_factory=dict)
    unchanged: dict[str, str] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)  # would run, but a failed blocking check upstream says no
    fingerprints: dict[str, str] = field(default_factory=dict)
    passive: list[str] = field(default_factory=list)  # runs only because a parent runs, and does not propagate

    @property
    def nothing_to_do(self) -> bool:
        return not self.run

    def tags(self) -> dict[str, str]:
        """The run tags that record the fingerprints this run was launched with."""
        return {f"{FINGERPRINT_TAG}{name}": value for name, value in sorted(self.fingerprints.items())}

    def summary(self) -> str:
        if self.nothing_to_do:
            runs = sorted(set(self.unchanged.values()))
            since = f"run {runs[-1][:8]}" if len(runs) == 1 else f"{len(runs)} earlier runs"
            blocked = f"; {len(self.blocked)} blocked by a failed check" if self.blocked else ""
            return f"nothing changed: {len(self.unchanged)} assets' inputs unchanged since {since}{blocked}"
        return f"{len(self.run)} assets to run, {len(self.unchanged)} unchanged" + (
            f", {len(self.blocked)} blocked by a failed check" if self.blocked else ""
        )


def fingerprints_of_run(tags: Mapping[str, str]) -> dict[str, str]:
    return {k.removeprefix(FINGERPRINT_TAG): v for k, v in tags.items() if k.startswith(FINGERPRINT_TAG)}


def plan(
    nodes: Mapping[str, Node],
    last: Mapping[str, Last | None],
    fingerprints: Mapping[str, str],
    missing: Iterable[str] = (),
    failed_gates: Mapping[str, str] | None = None,
) -> Plan:
    """Which of ``nodes`` must run. ``last``: each one's latest materialization (None: never); ``fingerprints``:
    the current value of every fingerprint; ``missing``: assets whose table is not in the warehouse;
    ``failed_gates``: assets whose latest blocking check failed (-> the check), so that what is downstream of them
    is not rebuilt on data that did not pass while they themselves do not run."""
    missing = set(missing)
    failed_gates = failed_gates or {}
    result = Plan(fingerprints=dict(fingerprints))
    order = TopologicalSorter({k: [p for p in n.parents if p in nodes] for k, n in nodes.items()}).static_order()
    for key in order:
        node = nodes[key]
        reason = _reason(key, node, last, fingerprints, missing, result)
        if reason is None:
            result.unchanged[key] = last[key].run_id  # type: ignore[union-attr]
            continue
        gate = next(
            (
                f"{p}: {failed_gates[p]}"
                for p in node.parents
                if p in failed_gates and p not in result.run and p in nodes
            ),
            None,
        )
        blocked_parent = next((p for p in node.parents if p in result.blocked), None)
        if gate or blocked_parent:
            result.blocked[key] = (
                f"{reason}, but blocked: the check {gate} failed and its data did not change"
                if gate
                else f"{reason}, but blocked upstream ({blocked_parent})"
            )
            continue
        result.run[key] = reason
        if not node.propagates and reason.startswith("upstream "):
            result.passive.append(key)
    return result


def _reason(
    key: str,
    node: Node,
    last: Mapping[str, Last | None],
    fingerprints: Mapping[str, str],
    missing: set[str],
    partial: Plan,
) -> str | None:
    mine = last.get(key)
    if mine is None:
        return "never materialized"
    if key in missing:
        return "its table is missing from the warehouse"
    for name in node.inputs:
        if name not in mine.fingerprints:
            return f"{name}: not recorded on its last run ({mine.run_id[:8]})"
        if mine.fingerprints[name] != fingerprints.get(name):
            return f"{name} changed since run {mine.run_id[:8]}"
    if node.code_version is not None and node.code_version != mine.code_version:
        return "its code changed"
    for parent in node.parents:
        if parent in partial.run and parent not in partial.passive:
            return f"upstream {parent} runs"
        if parent not in last:  # not part of the build (a delivery, a spec written outside Dagster)
            continue
        theirs = last[parent]
        if theirs is not None and mine.parents.get(parent) != theirs.data_version:
            return f"upstream {parent} changed since (run {theirs.run_id[:8]})"
    return None


Fingerprint = Callable[[], str]


def code_paths(package: Path) -> list[Path]:
    """The project's Python code (every module, the web app and the simulator included: any edit reruns the Python
    assets once; ``mos run --full-refresh`` is the way to force a rerun without an edit)."""
    return [package]


def env_files(names: Iterable[str]) -> list[Path]:
    """Files named by environment variables that are set (configuration overrides)."""
    return [Path(os.environ[n]) for n in sorted(names) if os.environ.get(n)]
