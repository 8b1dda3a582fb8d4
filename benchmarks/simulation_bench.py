"""Time and memory of generating a simulated world.

    python benchmarks/simulation_bench.py --people 100000 --days 90

Prints wall time, peak RSS and what was written, and appends one JSON line to
benchmarks/results/simulation.jsonl.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mos_pipelines.simulation import WorldConfig, generate_world

RESULTS = Path(__file__).parent / "results" / "simulation.jsonl"


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _size_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="MOS_HOME to write into (default: a temporary folder, removed afterwards)",
    )
    args = parser.parse_args()

    home = args.out or Path(tempfile.mkdtemp(prefix="mos-sim-bench-"))
    stage_seconds: dict[str, float] = {}
    began = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        if done == total:
            stage_seconds[stage] = round(time.perf_counter() - began - sum(stage_seconds.values()), 2)

    try:
        summary = generate_world(WorldConfig(seed=args.seed, people=args.people, days=args.days), home, progress)
        wall = time.perf_counter() - began
        result = {
            "benchmark": "simulation",
            "people": args.people,
            "days": args.days,
            "seed": args.seed,
            "wall_seconds": round(wall, 2),
            "stage_seconds": stage_seconds,
            "peak_rss_mb": round(_peak_rss_mb(), 1),
            "files": summary.files_written,
            "rows_per_source": summary.rows_per_source,
            "dirty_rows": sum(summary.dirty_rows.values()),
            "landing_mb": round(_size_mb(summary.landing_dir), 1),
            "truth_mb": round(_size_mb(summary.truth_dir), 1),
            "python": platform.python_version(),
            "machine": platform.machine(),
        }
    finally:
        if args.out is None:
            shutil.rmtree(home, ignore_errors=True)
    print(
        f"{args.people:,} people x {args.days} days: {result['wall_seconds']} s wall, "
        f"peak RSS {result['peak_rss_mb']} MB, {result['files']} files, "
        f"{sum(summary.rows_per_source.values()):,} records ({result['landing_mb']} MB landing)"
    )
    for source, rows in sorted(summary.rows_per_source.items()):
        print(f"  {source:<13} {rows:>12,}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
