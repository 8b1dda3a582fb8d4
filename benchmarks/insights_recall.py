"""Planted-effect recall, insights about null slices, and every accepted insight scored against the generating
truth, over several simulated worlds.

    python benchmarks/insights_recall.py --seeds 1-10 --people 1000 --days 21 \
        --scenario tests/integration/insights_planted.yaml --out /tmp/recall
    python benchmarks/insights_recall.py --seeds 1-5,7 --people 5000 --days 60 --out /tmp/demo-like

Each world is generated, ingested and its marketing marts built with dbt (no tests), two at a time;
the insights run on each (statements from templates) and are compared with the world's truth
(mos_pipelines/insights/evaluation.py; each accepted insight supported / unsupported / not checkable by
mos_pipelines/simulation/insight_truth.py). Prints the tables and the seconds each step took.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mos_pipelines.insights.evaluation import build_worlds, evaluate_world, recall_table


def seeds_of(text: str) -> list[int]:
    """'1-10', '1,2,3' or '1-5,7'."""
    seeds: list[int] = []
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-")
            seeds += range(int(low), int(high) + 1)
        else:
            seeds.append(int(part))
    return seeds


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
