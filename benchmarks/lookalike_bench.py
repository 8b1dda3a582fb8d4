"""Lookalike fit and score time at a given population size, run by hand (never a timed test).

    .venv/bin/python benchmarks/lookalike_bench.py --rows 100000
    .venv/bin/python benchmarks/lookalike_bench.py --rows 1000000                  # the issue's target
    .venv/bin/python benchmarks/lookalike_bench.py --rows 1000000 --model linear

The population is synthetic (the same generator as tests/unit/test_lookalike.py, scaled): numeric and
text-category features with missing values, seed membership drawn from a known logistic propensity
(≈ 14 % of rows). Fit = sampling, calibrated training, held-out evaluation with its bootstrap interval
and permutation importance; score = ``LookalikeFit.score`` over every population row plus ranking into
tiers (the issue's target: 1M rows scored in under 30 s on 2 cores). Training is bounded whatever the
size (at most 50k seed rows and 100k negatives, ModelSettings), so fit time levels off above ~400k rows
while score time grows linearly. Run on an idle machine; ``--threads`` caps the OpenMP threads of the
gradient boosting (default: all cores). Appends a JSON line to benchmarks/results/lookalike.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mos_pipelines.configuration import load_lookalike  # noqa: E402
from mos_pipelines.lookalike.model import fit_lookalike, infer_features, rank_population  # noqa: E402

INDUSTRIES = ["software", "retail", "finance", "health", "manufacturing", "education", "media", "energy"]
REGIONS = ["NA", "EU", "UK", "APAC", "LATAM"]


def population(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    industry = rng.choice(INDUSTRIES, size=n)
    region = rng.choice(REGIONS, size=n, p=[0.4, 0.25, 0.1, 0.15, 0.1])
    employees = rng.lognormal(4, 1.2, size=n)
    sessions = rng.poisson(3, size=n).astype(float)
    sessions[rng.random(n) < 0.1] = np.nan
    opens = rng.poisson(2, size=n).astype(float)
    linear = (
        -5.2
        + 0.4 * np.log(employees)
        + 0.3 * np.nan_to_num(sessions, nan=3.0)
        + 0.2 * opens
        + np.where(industry == "software", 1.0, 0.0)
        + np.where(region == "EU", 0.5, 0.0)
    )
    propensity = 1 / (1 + np.exp(-linear))
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "industry": industry,
            "region": region,
            "employees": employees,
            "sessions_30d": sessions,
            "email_opens_30d": opens,
            "days_since_signup": rng.integers(0, 900, size=n),
            "noise_a": rng.normal(size=n),
            "noise_b": rng.choice(["x", "y", "z"], size=n),
        }
    )
    return frame, propensity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--model", choices=["gradient_boosting", "linear"], default="gradient_boosting")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="OpenMP threads (default: all cores)")
    args = parser.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    frame, propensity = population(args.rows, args.seed)
    is_seed = np.random.default_rng(args.seed + 1).random(args.rows) < propensity
    settings = load_lookalike().model.model_copy(update={"kind": args.model})  # config/lookalike.yaml, this kind
    spec = infer_features(frame, exclude=("customer_id",))
    t0 = time.perf_counter()
    fit = fit_lookalike(frame, is_seed, spec, settings, audience="bench", true_propensity=propensity)
    fit_seconds = time.perf_counter() - t0
    pop = frame.loc[~is_seed]
    t0 = time.perf_counter()
    ranked = rank_population(pop["customer_id"], fit.score(pop))
    score_seconds = time.perf_counter() - t0
    ev = fit.evaluation
    line = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "rows": args.rows,
        "model": args.model,
        "seed_rows": int(is_seed.sum()),
        "scored_rows": len(ranked),
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "fit_seconds": round(fit_seconds, 2),
        "fit_stages": {k: round(v, 2) for k, v in fit.seconds.items()},
        "score_seconds": round(score_seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "auc": round(ev.auc, 4),
        "true_propensity_auc": round(ev.true_propensity_auc or float("nan"), 4),
        "lift_at_10": round(ev.lift_at[10], 3),
        "spearman_vs_truth": round(ev.true_propensity_spearman or float("nan"), 4),
    }
    print(json.dumps(line))
    out = ROOT / "benchmarks" / "results" / "lookalike.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
