"""Locating the dbt project and keeping its manifest current.

dagster-dbt builds assets from ``target/manifest.json``. A fresh clone has none, and an edited model
makes it stale, so ``ensure_manifest`` runs ``dbt parse`` (with the configuration's vars) when the project's
files changed since the last parse (a fingerprint of them is kept next to the manifest). A changed var value does
not make the manifest stale: the manifest gives Dagster the project's nodes, which vars do not change here, and
dbt re-parses on its own when the vars of a build differ from its last parse. It runs at command or dev time — `mos run`, `mos dev`, `mos prepare`, `dagster dev`, the test
session — never when the definitions are imported (``prepared_manifest`` only reads). ``dbt_command`` is
every other dbt invocation by hand (``mos dbt -- <args>``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from mos_pipelines.configuration.dbt import vars_json
from mos_pipelines.settings import DBT_PROJECT_DIR

PROJECT_FILE_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md", ".py"}
PROJECT_SUBDIRS = ("models", "macros", "seeds", "snapshots", "tests", "analyses")
MANIFEST_FILE = "target/manifest.json"  # where dbt parse writes it (dagster-dbt's DbtProject looks there too)


class DbtParseError(RuntimeError):
    """``dbt parse`` failed; the message carries dbt's own output."""


class ManifestMissing(RuntimeError):
    """The dbt manifest has not been prepared, or the project changed since (``mos prepare``)."""


def project_fingerprint(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """sha256 over the paths and contents of every file that affects the manifest."""
    digest = hashlib.sha256()
    files = [project_dir / "dbt_project.yml"]
    for sub in PROJECT_SUBDIRS:
        root = project_dir / sub
        if root.is_dir():
            files += [p for p in root.rglob("*") if p.is_file() and p.suffix in PROJECT_FILE_SUFFIXES]
    for path in sorted(files):
        digest.update(path.relative_to(project_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def dbt_executable() -> str:
    """The dbt CLI installed next to this interpreter (the project's venv), else the one on PATH."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def ensure_manifest(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """Return the manifest path, running ``dbt parse`` first when it is missing or stale.

    A file lock serialises concurrent callers (parallel test workers, UI and CLI starting together).
    """
    manifest = project_dir / MANIFEST_FILE
    manifest.parent.mkdir(parents=True, exist_ok=True)
    stamp = manifest.parent / "mos_fingerprint.txt"
    dbt_vars = vars_json(lenient=True)  # a broken activation config must not stop the rest of the project parsing
    fingerprint = project_fingerprint(project_dir)
    with (manifest.parent / ".mos_parse.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest.exists() and stamp.exists() and stamp.read_text() == fingerprint:
            return manifest
        env = {**os.environ}
        env.setdefault("MOS_HOME", str(Path(".mos").resolve()))
        proc = subprocess.run(
            [
                dbt_executable(),
                "parse",
                "--quiet",
                "--project-dir",
                str(project_dir),
                "--profiles-dir",
                str(project_dir),
                "--vars",
                dbt_vars,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=project_dir,
        )
        if proc.returncode != 0:
            raise DbtParseError(f"dbt parse failed in {project_dir}:\n{proc.stdout}\n{proc.stderr}")
        stamp.write_text(fingerprint)
    return manifest


def prepared_manifest(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """The manifest the definitions are built from. Under ``dagster dev`` (dev time) it is brought up to date
    first, as dagster-dbt's ``prepare_if_dev`` does; otherwise it must have been prepared by a command."""
    if os.environ.get("DAGSTER_IS_DEV_CLI"):
        return ensure_manifest(project_dir)
    manifest = project_dir / MANIFEST_FILE
    if not manifest.exists():
        raise ManifestMissing(
            f"{manifest} does not exist: prepare the dbt manifest with `mos prepare` "
            "(`mos run` and `mos dev` do it themselves)"
        )
    stamp = manifest.parent / "mos_fingerprint.txt"
    if not stamp.exists() or stamp.read_text() != project_fingerprint(project_dir):
        raise ManifestMissing(
            f"{manifest} is older than the dbt project's files (a model, test or seed changed since "
            "the last parse, or the parse failed): run `mos prepare` to parse it again and see "
            "dbt's error if there is one"
        )
    return manifest


def dbt_command(args: list[str], project_dir: Path = DBT_PROJECT_DIR) -> list[str]:
    """The dbt command line for ``args`` as mos runs it: the project and its profile, and the configuration's
    vars (merged under any ``--vars`` given in ``args``, which win)."""
    import yaml

    args = list(args)
    values = json.loads(vars_json())
    for flag in ("--vars",):
        while flag in args:
            at = args.index(flag)
            if at + 1 >= len(args):
                raise ValueError("--vars needs a YAML mapping, e.g. --vars '{mos__session_timeout_minutes: 45}'")
            given = yaml.safe_load(args[at + 1]) or {}
            if not isinstance(given, dict):
                raise ValueError(f"--vars takes a YAML mapping, got {args[at + 1]!r}")
            values.update(given)
            del args[at : at + 2]
    command = [dbt_executable(), *args]
    if not args or args[0].startswith("-"):  # `dbt --version`, `dbt --help`: nothing to add
        return command
    if "--project-dir" not in args:
        command += ["--project-dir", str(project_dir)]
    if "--profiles-dir" not in args:
        command += ["--profiles-dir", str(project_dir)]
    return command + ["--vars", json.dumps(values, sort_keys=True, separators=(",", ":"))]
