"""Blueprints against today's default schedule on simulated worlds (issue 16).

For each scenario: generate a world and build it (`mos generate`, `mos run`) in its own MOS_HOME under --out (kept
and reused when present), then for each budget draft the objective's blueprint (`mos blueprint new`), approve it and
run `mos simulate --blueprint <id> --days <horizon>`; the rows of blueprints.simulations are appended to
benchmarks/results/blueprint.jsonl and a markdown table is printed.

    .venv/bin/python benchmarks/blueprint_bench.py --out /tmp/bp-bench \
        --scenarios default,mos_pipelines/simulation/scenarios/blueprint_channels.yaml --budgets 5000,20000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
MOS = [str(Path(sys.executable).with_name("mos"))]
RESULTS = ROOT / "benchmarks" / "results" / "blueprint.jsonl"


def mos(home: Path, *args: str) -> str:
    env = {
        **os.environ,
        "MOS_HOME": str(home),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "DO_NOT_TRACK": "1",
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "COLUMNS": "200",
    }
    done = subprocess.run([*MOS, *args], env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"mos {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenarios", default="default")
    parser.add_argument("--budgets", default="5000,20000")
    parser.add_argument("--objective", default="Expand paying customers in the EU")
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = []
    for scenario in args.scenarios.split(","):
        name = Path(scenario).stem
        home = args.out / f"{name}-{args.people}x{args.days}-s{args.seed}"
        began = time.perf_counter()
        if not (home / "warehouse.duckdb").exists():
            extra = [] if scenario == "default" else ["--scenario", str(Path(scenario).resolve())]
            mos(
                home,
                "generate",
                "--seed",
                str(args.seed),
                "--people",
                str(args.people),
                "--days",
                str(args.days),
                *extra,
            )
            mos(home, "run")
        built = time.perf_counter() - began
        for budget in args.budgets.split(","):
            out = mos(
                home,
                "blueprint",
                "new",
                "--objective",
                args.objective,
                "--budget",
                budget,
                "--months",
                str(args.months),
                "--force",
            )
            bid = next(w for w in out.split() if w.startswith("bp_"))
            goal = next(line for line in out.splitlines() if line.startswith("Goal:"))
            mos(home, "blueprint", "approve", bid, "--by", "benchmark")
            horizon = round(args.months * 365.25 / 12)
            mos(home, "simulate", "--blueprint", bid, "--days", str(horizon))
            with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
                frame = con.execute(
                    "select * exclude (simulated_at) from blueprints.simulations where blueprint_id = ? "
                    "and simulated_at = (select max(simulated_at) from blueprints.simulations where blueprint_id = ?)",
                    [bid, bid],
                ).df()
            for record in frame.to_dict("records"):
                record.update(budget_usd=float(budget), goal=goal, world=home.name, build_seconds=round(built, 1))
                rows.append(record)
    with RESULTS.open("a", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, default=str) + "\n")
    print(
        "| scenario | budget | policy | spent $ | new (drawn) | expected (truth) | expected per $1k | goal for the days |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['scenario']} | ${r['budget_usd']:,.0f} | {r['policy']} | {r['spend_usd']:,.0f} | {r['new_customers']} "
            f"| {r['expected_new_customers']:.1f} | {r['expected_per_1000_usd']:.2f} | {r['goal_for_days']} |"
        )


if __name__ == "__main__":
    main()
