"""One daily allocation update of the variant bandit at scale, run by hand (never a timed test).

    .venv/bin/python benchmarks/experiments_bench.py --units 1000000 --arms 20

Builds a DuckDB warehouse with the raw tables the closed loop's fast mode reads: one email experiment with
``--arms`` variants, ``--units`` recipients (each with a consent row giving its region) and a week of sends
(``--sends-per-unit`` per recipient on average, arms drawn uniformly, clicks at known per-arm rates). Then
times the production code path of one day:

- ``update``: ``daily.update_bandit`` — per-unit exposures and clicks with holdout units dropped by their
  hash in SQL, segment lookup, aggregation, posteriors and P(best) for 5 segments × arms, guard rails, write;
- ``assign``: ``daily.assign`` — holdout and arm hashes of every unit, segment shares, upsert of
  ``experiments.assignments``.

Appends a JSON line to benchmarks/results/experiments.jsonl.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC
from datetime import datetime as dt
from pathlib import Path

import duckdb
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mos_pipelines.configuration import load_experiments as load_config  # noqa: E402
from mos_pipelines.experiments import daily  # noqa: E402
from mos_pipelines.experiments.outcomes import RAW  # noqa: E402
from mos_pipelines.ingestion.contracts import SOURCES  # noqa: E402
from mos_pipelines.ingestion.loader import ensure_tables  # noqa: E402

REGIONS = ["NA", "EU", "UK", "APAC", "LATAM"]
START = datetime.date(2026, 1, 1)


def build(con: duckdb.DuckDBPyConnection, units: int, arms: int, sends_per_unit: float, seed: int) -> None:
    for source in ("campaigns", "email", "consent"):
        ensure_tables(con, SOURCES[source])
    variants = [f"V{k:02d}" for k in range(arms)]
    rng = np.random.default_rng(seed)
    rates = np.round(rng.uniform(0.02, 0.08, arms), 4).tolist()
    meta = "'bench', 1, 'bench', now()::timestamp, null"
    con.executemany(
        f"insert into raw.campaigns values ('em_bench', 'Bench', 'email', 'engagement', ?, ?, false, "
        f"date '{START}', null, null, 0.001, {meta})",
        [[v, v] for v in variants],
    )
    con.execute(
        f"insert into raw.campaigns values ('em_bench', 'Bench', 'email', 'engagement', 'holdout', "
        f"'Holdout', true, date '{START}', null, null, 0.001, {meta})"
    )
    con.execute(f"""
        insert into raw.consent
        select 'user' || i || '@bench.example', 'email_marketing', 'granted',
            {list(REGIONS)}[1 + (hash(i) % 5)::int], 'bench', timestamp '{START}', {meta}
        from range({units}) t(i)
    """)
    days = 7
    con.execute(f"""
        create temp table sends as
        select i as unit, (hash(i, d) % {arms})::int as arm, d,
            'm' || i || '-' || d as message_id
        from range({units}) t(i), range({days}) s(d)
        where (hash(d, i) % 1000000) / 1000000.0 < {sends_per_unit / days}
    """)
    con.execute(f"""
        insert into raw.email
        select message_id, 'em_bench', 'V' || lpad(arm::varchar, 2, '0'), 'user' || unit || '@bench.example',
            'sent', timestamp '{START}' + to_days(d) + interval 5 minute, {meta}
        from sends
    """)
    con.execute(f"""
        insert into raw.email
        select message_id, 'em_bench', 'V' || lpad(arm::varchar, 2, '0'), 'user' || unit || '@bench.example',
            'clicked', timestamp '{START}' + to_days(d) + interval 2 hour, {meta}
        from sends
        where (hash(message_id) % 1000000) / 1000000.0 < {rates}[arm + 1]
    """)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--arms", type=int, default=20)
    parser.add_argument("--sends-per-unit", type=float, default=1.0, help="average sends per unit over the week")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-record", action="store_true", help="do not append to benchmarks/results")
    args = parser.parse_args()
    config = load_config()
    with tempfile.TemporaryDirectory(prefix="mos-experiments-bench-") as folder:
        con = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        began = time.perf_counter()
        build(con, args.units, args.arms, args.sends_per_unit, args.seed)
        build_s = time.perf_counter() - began
        email_rows = con.execute("select count(*) from raw.email").fetchall()[0][0]
        date = START + datetime.timedelta(days=7)

        began = time.perf_counter()
        update = daily.update_bandit(con, RAW, config, allocation_date=date)
        update_s = time.perf_counter() - began

        audience = con.execute("select 'em_bench' as experiment_id, subject as recipient_email from raw.consent").df()
        began = time.perf_counter()
        assigned = daily.assign(con, RAW, config, update.experiments, update.allocations, audience, date, replace=True)
        assign_s = time.perf_counter() - began
        con.close()
    result = {
        "measured_at": dt.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "units": args.units,
        "arms": args.arms,
        "email_rows": int(email_rows),
        "treated_units_learned_from": update.treated_units,
        "segments": int(update.allocations["segment"].nunique()),
        "assigned_units": len(assigned),
        "holdout_share": round(float(assigned["is_holdout"].mean()), 4),
        "build_data_seconds": round(build_s, 2),
        "update_seconds": round(update_s, 2),
        "assign_seconds": round(assign_s, 2),
        "daily_update_seconds": round(update_s + assign_s, 2),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    print(json.dumps(result))
    if not args.no_record:
        out = ROOT / "benchmarks" / "results" / "experiments.jsonl"
        with out.open("a") as handle:
            handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
