"""Run another benchmark script with every new DuckDB connection capped in memory and spilling to disk.

    .venv/bin/python benchmarks/identity/duckdb_capped.py --memory-limit 8GB --temp-dir /tmp/spill \
        benchmarks/identity/mos_bench.py --dataset sim-crm-1m --settings crm

Works in either venv (project or .venv-splink). The scripts themselves open DuckDB with its defaults
(memory_limit = 80 % of RAM), which on a shared machine can take all of it before DuckDB spills.
"""

from __future__ import annotations

import argparse
import runpy
import sys

import duckdb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory-limit", required=True, help="DuckDB memory_limit, e.g. 8GB")
    parser.add_argument("--temp-dir", required=True, help="DuckDB temp_directory (spill files)")
    parser.add_argument("script", help="the benchmark script to run")
    args, rest = parser.parse_known_args()
    connect = duckdb.connect

    def capped(*a, **k):
        con = connect(*a, **k)
        con.execute("set memory_limit = ?", [args.memory_limit])
        con.execute("set temp_directory = ?", [args.temp_dir])
        return con

    duckdb.connect = capped
    sys.argv = [args.script, *rest]
    runpy.run_path(args.script, run_name="__main__")


if __name__ == "__main__":
    main()
