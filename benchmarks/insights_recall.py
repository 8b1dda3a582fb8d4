"""Planted-effect recall and false-insight rate of the insights over several simulated worlds.

    python benchmarks/insights_recall.py --seeds 1-10 --people 1000 --days 21 \
        --scenario tests/integration/insights_planted.yaml --out /tmp/recall

Each world is generated, ingested and its marketing marts built with dbt (no tests), two at a time;
the insights run on each (statements from templates) and are compared with the world's truth
(mos_pipelines/insights/evaluation.py). Prints the table and the seconds each step took.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mos_pipelines.insights.evaluation import build_worlds, evaluate_world, recall_table


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1-10")
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--scenario", type=Path, default=None, help="default: the bundled scenario")
    parser.add_argument("--out", type=Path, required=True, help="folder for the worlds (one per seed)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    began = time.perf_counter()
    built = build_worlds(seeds_of(args.seeds), args.people, args.days, args.scenario, args.out, args.workers)
    build_seconds = time.perf_counter() - began
    results = []
    began = time.perf_counter()
    for home, seconds in built:
        results.append((int(home.name.removeprefix("seed")), evaluate_world(home)))
        print(json.dumps({"world": home.name, **{k: round(v, 1) for k, v in seconds.items()}}))
    print(recall_table(results))
    print(f"\nworlds built in {build_seconds:.0f} s, insights + evaluation in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
