"""The contextual bandit replayed on randomized logs drawn from the simulator, run by hand (never a timed test).

    .venv/bin/python benchmarks/contextual_bench.py --seeds 7-11 --people 3000 --sends-per-person 8

For each seed, scenario and set of context columns: draws a uniformly randomized log from the scenario's true
response model (``simulation/experiment_log.py``; 10 % of feature values blanked), writes it as CSV and
replays it with ``offline.evaluate_contextual`` (the code behind ``mos experiments evaluate --context-columns``):
the contextual policy, the non-contextual bandit and the best single arm, each with a 95 % interval, and the
truth (best single arm's and per-unit oracle's expected click rate).

- heterogeneous: ``experiment_segment_winners`` (A wins for marketers, B for engineers and at 1000+ companies,
  C elsewhere); pass when the contextual interval lies above the best single arm's (non-overlapping);
- homogeneous: ``experiment_b_wins`` (B wins for everyone); pass when the interval of contextual − bandit
  reaches 0 or lies above it (no worse than the non-contextual bandit within noise).

Appends one JSON line per replay to benchmarks/results/contextual.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC
from datetime import datetime as dt
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mos_pipelines.configuration import DOMAINS, load_experiments  # noqa: E402
from mos_pipelines.experiments.offline import evaluate_contextual, read_log  # noqa: E402
from mos_pipelines.simulation.experiment_log import FEATURES, randomized_log  # noqa: E402
from mos_pipelines.simulation.scenario import DEFAULT_SCENARIO, load_scenario  # noqa: E402

SCENARIOS = {"heterogeneous": "experiment_segment_winners", "homogeneous": "experiment_b_wins"}
COLUMN_SETS = {"3 columns": ["persona", "size_band", "signup_recency"], "7 columns": list(FEATURES)}


def seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        out += list(range(int(low), int(high or low) + 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="7-11")
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--sends-per-person", type=int, default=8)
    parser.add_argument("--missing-rate", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--no-record", action="store_true", help="do not append to benchmarks/results")
    args = parser.parse_args()
    settings = load_experiments(DOMAINS["experiments"].file).bandit
    rows = []
    with tempfile.TemporaryDirectory(prefix="mos-contextual-bench-") as folder:
        for seed in seeds(args.seeds):
            for kind, scenario_name in SCENARIOS.items():
                scenario = load_scenario(DEFAULT_SCENARIO.parent / f"{scenario_name}.yaml")
                drawn = randomized_log(
                    seed, args.people, scenario, sends_per_person=args.sends_per_person, missing_rate=args.missing_rate
                )
                path = Path(folder) / f"{scenario_name}-{seed}.csv"
                drawn.log.to_csv(path, index=False)
                for label, columns in COLUMN_SETS.items():
                    began = time.perf_counter()
                    result = evaluate_contextual(
                        read_log(path, "variant", "clicked", context_columns=columns),
                        settings,
                        batch_size=args.batch_size,
                    )
                    seconds = time.perf_counter() - began
                    best = result.base.arm_estimates[result.base.best_arm]
                    passed = (
                        result.policy.lower > best.upper if kind == "heterogeneous" else result.vs_bandit.upper >= 0
                    )
                    row = {
                        "measured_at": dt.now(UTC).isoformat(timespec="seconds"),
                        "host": platform.node(),
                        "load_1min": round(os.getloadavg()[0], 2),
                        "seed": seed,
                        "log": kind,
                        "scenario": scenario_name,
                        "columns": label,
                        "rows": len(drawn.log),
                        "contextual": [
                            round(v, 4) for v in (result.policy.mean, result.policy.lower, result.policy.upper)
                        ],
                        "bandit": [
                            round(v, 4)
                            for v in (result.base.policy.mean, result.base.policy.lower, result.base.policy.upper)
                        ],
                        "best_arm": [
                            result.base.best_arm,
                            round(best.mean, 4),
                            round(best.lower, 4),
                            round(best.upper, 4),
                        ],
                        "vs_bandit": [
                            round(v, 4) for v in (result.vs_bandit.mean, result.vs_bandit.lower, result.vs_bandit.upper)
                        ],
                        "true_best_arm": round(drawn.best_single_arm()[1], 4),
                        "true_oracle": round(drawn.oracle(), 4),
                        "passed": bool(passed),
                        "replay_seconds": round(seconds, 2),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    if not args.no_record:
        with (ROOT / "benchmarks" / "results" / "contextual.jsonl").open("a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    for kind in SCENARIOS:
        for label in COLUMN_SETS:
            mine = [r for r in rows if r["log"] == kind and r["columns"] == label]
            print(f"{kind}, {label}: passed {sum(r['passed'] for r in mine)} of {len(mine)}")


if __name__ == "__main__":
    main()
