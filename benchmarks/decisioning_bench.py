"""Next best action vs today's stage-filter syncs, closed loop (issue 17).

For every built world given (a MOS_HOME whose warehouse `mos run` built), on a copy of its warehouse: ICP tiers
and routing by the active policy, the people as decisioning reads them (`decisioning.store.load_persons`, plus each
person's best lookalike tier), then `simulation.decisioning_loop.run_loop` per truth scenario. Prints one table
and appends the figures to benchmarks/results/decisioning.jsonl.

    .venv/bin/python benchmarks/decisioning_bench.py /tmp/world-a /tmp/world-b --days 30 --scenarios b2b,retention
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from mos_pipelines.configuration import load_policy, load_transform
from mos_pipelines.decisioning import store
from mos_pipelines.policy import icp, routing, tables
from mos_pipelines.simulation.decisioning_loop import SCENARIOS, run_loop

RESULTS = Path(__file__).parent / "results" / "decisioning.jsonl"


def persons_of(mos_home: Path) -> pd.DataFrame:
    settings = load_policy()
    bands = load_transform().mos__marketing_customer_segments
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "warehouse.duckdb"
        shutil.copy(mos_home / "warehouse.duckdb", copy)
        con = duckdb.connect(str(copy))
        now = con.execute("select max(as_of_at) from marts.dim_customer_features").fetchone()[0]
        now = now.replace(tzinfo=datetime.UTC)
        version = tables.record_version(con, settings, now)
        icp.write(con, icp.score(con, settings.icp, version, now))
        routing.run(con, settings.routing, bands, version, now)  # writes policy.routing_assignments
        persons, _ = store.load_persons(con, settings, bands)
        tiers = con.execute(
            "select customer_id, min(tier) as lookalike_tier from ml.lookalike_scores where tier is not null "
            "group by customer_id"
        ).df()
        con.close()
    return persons.merge(tiers, on="customer_id", how="left")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("worlds", nargs="+", type=Path)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--scenarios", default="b2b,retention")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--model", choices=["cells", "contextual"], default=None, help="learning.model (default: policy)"
    )
    args = parser.parse_args()
    load = Path("/proc/loadavg").read_text().split()[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    tables_, records = [], []
    for world in args.worlds:
        persons = persons_of(world)
        for name in args.scenarios.split(","):
            began = time.perf_counter()
            policy = load_policy()
            if args.model:
                learning_ = policy.decisioning.learning.model_copy(update={"model": args.model})
                policy = policy.model_copy(
                    update={"decisioning": policy.decisioning.model_copy(update={"learning": learning_})}
                )
            outcome = run_loop(persons, policy, SCENARIOS[name], days=args.days, seed=args.seed)
            seconds = round(time.perf_counter() - began, 1)
            table = outcome.table().assign(world=world.name, model=policy.decisioning.learning.model, seconds=seconds)
            tables_.append(table)
            h = outcome.holdout
            print(
                f"{world.name} {name}: budget ${outcome.budget_per_day_usd}/day; NBA lift over its holdout "
                f"{h['lift']:+.4f} (95 % CI {h['lift_low']:+.4f} to {h['lift_high']:+.4f}; treated "
                f"{h['treated_rate']:.4f} of {h['treated_people']}, holdout {h['holdout_rate']:.4f} of "
                f"{h['holdout_people']}); expected conversions a person {h['expected_treated']:.4f} vs "
                f"{h['expected_holdout']:.4f}, lift {h['expected_lift']:+.4f} (95 % CI {h['expected_lift_low']:+.4f} "
                f"to {h['expected_lift_high']:+.4f}); by action: "
                + "; ".join(f"{r.policy} {r.by_action}" for r in outcome.runs.values())
            )
            records.append(
                {
                    "world": world.name,
                    "scenario": name,
                    "model": policy.decisioning.learning.model,
                    "days": args.days,
                    "people": outcome.people,
                    "budget_per_day_usd": outcome.budget_per_day_usd,
                    "policies": table.drop(columns=["world", "model", "seconds"]).to_dict("records"),
                    "holdout": h,
                    "seconds": seconds,
                    "load": load,
                    "commit": commit,
                    "date": datetime.date.today().isoformat(),
                }
            )
    print(pd.concat(tables_).to_string(index=False))
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as out:
        for record in records:
            out.write(json.dumps(record, default=float) + "\n")


if __name__ == "__main__":
    main()
