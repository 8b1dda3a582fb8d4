"""Generation and full-build time and peak memory, run by hand (never a timed test).

    .venv/bin/python benchmarks/build_bench.py --people 10000 --days 90
    .venv/bin/python benchmarks/build_bench.py --people 100000 --days 90 --full-only

The record also lists the full build's ten most expensive parts (Dagster steps; each dbt model and test from
dbt's run_results.json).

Each step runs as its own process (`mos generate`, `mos run`, a second `mos run` with no new files)
in a fresh MOS_HOME; wall time and peak RSS (the largest single process of the step, dbt's
subprocess included) are printed and appended to benchmarks/results/build.jsonl, with the re-run's
share of the full build (issue 20's target: at most 5 %) and the 1-minute load average before and
after each step (timings on a shared machine are not comparable with idle ones).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MOS = str(Path(sys.executable).parent / "mos")


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command; return (seconds, peak RSS in MiB of it and its descendants)."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{errors.read().decode()[-4000:]}")
    return seconds, usage.ru_maxrss / 1024


def expensive_steps(home: Path, top: int = 10) -> list[dict[str, object]]:
    """The most expensive parts of the full build (the first run of the home's Dagster instance): each Dagster step
    but the dbt ones, and each dbt node from the dbt invocations' run_results.json, by wall seconds."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    parts: list[dict[str, object]] = []
    with dg.DagsterInstance.get() as instance:
        runs = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
        if runs:
            for stat in instance.get_run_step_stats(runs[0].dagster_run.run_id):
                if stat.end_time and stat.start_time and "dbt" not in stat.step_key:
                    parts.append({"part": stat.step_key, "seconds": round(stat.end_time - stat.start_time, 1)})
    first_build = runs[0].create_timestamp.timestamp() if runs else 0.0
    second = runs[1].create_timestamp.timestamp() if len(runs) > 1 else float("inf")
    for results in (home / "dbt" / "target").glob("*/run_results.json"):
        if not first_build <= results.stat().st_mtime < second:
            continue
        for node in json.loads(results.read_text()).get("results", []):
            parts.append({"part": f"dbt {node['unique_id']}", "seconds": round(node.get("execution_time") or 0, 1)})
    return sorted(parts, key=lambda p: -float(p["seconds"]))[:top]  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the MOS_HOME it built")
    parser.add_argument("--full-only", action="store_true", help="generate and the full build only (no re-run)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix=f"mos-bench-{args.people}-"))
    env = {**os.environ, "MOS_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)  # derived from MOS_HOME by the CLI
    result: dict[str, object] = {
        "benchmark": "build",
        "people": args.people,
        "days": args.days,
        "seed": args.seed,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
    }
    steps = {
        "generate": [MOS, "generate", "--seed", str(args.seed), "--people", str(args.people), "--days", str(args.days)],
        "full_build": [MOS, "run"],
        "rerun_no_new_files": [MOS, "run"],
    }
    if args.full_only:
        del steps["rerun_no_new_files"]
    for name, cmd in steps.items():
        result[f"{name}_load_average_before"] = round(os.getloadavg()[0], 1)
        seconds, rss = measure(cmd, env)
        result[f"{name}_seconds"] = round(seconds, 1)
        result[f"{name}_peak_rss_mib"] = round(rss)
        # the 1-minute load average when the step ended: timings on a shared machine are not comparable
        result[f"{name}_load_average"] = round(os.getloadavg()[0], 1)
        print(f"{name:>20}: {seconds:8.1f} s   peak RSS {rss:8.0f} MiB", flush=True)
    if "rerun_no_new_files_seconds" in result:
        result["rerun_share_of_full_build"] = round(
            result["rerun_no_new_files_seconds"] / result["full_build_seconds"],  # type: ignore[operator]
            3,
        )
        print(f"{'re-run / full build':>20}: {result['rerun_share_of_full_build']:8.1%}", flush=True)
    result["full_build_top_parts"] = expensive_steps(home)
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    for table in ("raw.events", "raw.quarantine", "marts.fct_events", "marts.fct_sessions", "marts.fct_orders"):
        try:
            result[f"rows_{table}"] = con.execute(f"select count(*) from {table}").fetchone()[0]
        except duckdb.Error:
            pass
    con.close()
    result["warehouse_mib"] = round((home / "warehouse.duckdb").stat().st_size / 2**20)
    result["landing_mib"] = round(sum(p.stat().st_size for p in (home / "landing").rglob("*") if p.is_file()) / 2**20)
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results" / "build.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh:
        fh.write(json.dumps(result) + "\n")
    if not args.keep:
        shutil.rmtree(home)


if __name__ == "__main__":
    main()
