"""Generation and full-build time and peak memory, run by hand (never a timed test).

    .venv/bin/python benchmarks/build_bench.py --people 10000 --days 90
    .venv/bin/python benchmarks/build_bench.py --people 100000 --days 90 --profile
    .venv/bin/python benchmarks/build_bench.py --people 100000 --days 90 --full-only --profile
    .venv/bin/python benchmarks/build_bench.py --people 10000 --days 90 --engine spark   # the dbt steps on Spark

Each step runs as its own process (`mos generate`, `mos run`, a second `mos run` with no new files,
`mos generate` of one more day and the `mos run` that adds it)
in a fresh MOS_HOME; wall time and peak RSS (the largest single process of the step, dbt's
subprocess included) are printed and appended to benchmarks/results/build.jsonl, with the re-run's and
the next day's shares of the full build (issue 20's targets: at most 5 % and 15 %) and the 1-minute load
average before and after each step (timings on a shared machine are not comparable with idle ones).
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


def measure(cmd: list[str], env: dict[str, str], allow_failure: bool = False) -> tuple[float, float, str | None]:
    """Run a command; return (seconds, peak RSS in MiB of it and its descendants, its failure's last lines or None).
    A failure ends the benchmark unless ``allow_failure``."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        failure = None
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            failure = errors.read().decode()[-4000:]
            if not allow_failure:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{failure}")
    return seconds, usage.ru_maxrss / 1024, failure


def step_profile(home: Path, top: int = 10) -> dict[str, list[list[object]]]:
    """The ``top`` longest Dagster steps of each run in ``home`` (oldest run first: the full build, then the next
    day; the no-change re-run launches none), and the longest dbt nodes of those runs, in seconds."""
    os.environ["MOS_HOME"] = str(home)
    os.environ.pop("DAGSTER_HOME", None)
    from mos_pipelines.settings import configure_environment

    configure_environment()
    import dagster as dg

    instance = dg.DagsterInstance.get()
    profile: dict[str, list[list[object]]] = {}
    for number, run in enumerate(reversed(instance.get_runs(limit=10)), start=1):
        steps = [
            [s.step_key, round((s.end_time or 0) - (s.start_time or 0), 1)]
            for s in instance.get_run_step_stats(run.run_id)
            if s.start_time
        ]
        profile[f"run{number}_steps"] = sorted(steps, key=lambda row: -row[1])[:top]  # type: ignore[operator]
        nodes = []
        for results in (home / "dbt" / "target").glob(f"*-{run.run_id[:8]}/run_results.json"):
            for node in json.loads(results.read_text())["results"]:
                nodes.append([node["unique_id"].split(".", 2)[-1], round(node["execution_time"], 1)])
        profile[f"run{number}_dbt_nodes"] = sorted(nodes, key=lambda row: -row[1])[:top]  # type: ignore[operator]
    return profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the MOS_HOME it built")
    parser.add_argument("--profile", action="store_true", help="record the longest Dagster steps and dbt nodes")
    parser.add_argument("--full-only", action="store_true", help="generate and the full build only")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb", help="`mos run --engine`")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix=f"mos-bench-{args.people}-"))
    env = {**os.environ, "MOS_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)  # derived from MOS_HOME by the CLI
    result: dict[str, object] = {
        "benchmark": "build",
        "people": args.people,
        "days": args.days,
        "seed": args.seed,
        "engine": args.engine,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
    }

    def generate(days: int) -> list[str]:
        return [MOS, "generate", "--seed", str(args.seed), "--people", str(args.people), "--days", str(days)]

    run = [MOS, "run", "--engine", args.engine]
    steps = {
        "generate": generate(args.days),
        "full_build": run,
        "rerun_no_new_files": run,
        # the next day's landing files (earlier files stay byte-identical), then the daily run
        "generate_next_day": generate(args.days + 1),
        "next_day": run,
    }
    if args.full_only:
        steps = {name: steps[name] for name in ("generate", "full_build")}
    for name, cmd in steps.items():
        result[f"{name}_load_average_before"] = round(os.getloadavg()[0], 1)
        # the daily run's time is kept even when a blocking check fails it (what it ran is then said in the record)
        seconds, rss, failure = measure(cmd, env, allow_failure=name == "next_day")
        if failure:
            result[f"{name}_failed"] = [line for line in failure.splitlines() if line.startswith("failed:")][:5]
        result[f"{name}_seconds"] = round(seconds, 1)
        result[f"{name}_peak_rss_mib"] = round(rss)
        # the 1-minute load average when the step ended: timings on a shared machine are not comparable
        result[f"{name}_load_average"] = round(os.getloadavg()[0], 1)
        print(f"{name:>20}: {seconds:8.1f} s   peak RSS {rss:8.0f} MiB", flush=True)
    for step, share, label in (
        ("rerun_no_new_files", "rerun_share_of_full_build", "re-run / full build"),
        ("next_day", "next_day_share_of_full_build", "next day / full"),
    ):
        if f"{step}_seconds" in result:
            result[share] = round(result[f"{step}_seconds"] / result["full_build_seconds"], 3)  # type: ignore[operator]
            print(f"{label:>20}: {result[share]:8.1%}", flush=True)
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
    if args.profile:
        result["profile"] = step_profile(home)
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results" / "build.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh:
        fh.write(json.dumps(result) + "\n")
    if not args.keep:
        shutil.rmtree(home)


if __name__ == "__main__":
    main()
