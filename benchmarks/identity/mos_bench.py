"""Our matcher on a benchmark dataset directory (see README), written as a run directory for compare.py.

    .venv/bin/python benchmarks/identity/mos_bench.py --dataset febrl3
    .venv/bin/python benchmarks/identity/mos_bench.py --dataset sim-crm-10k --settings crm
    .venv/bin/python benchmarks/identity/mos_bench.py --dataset febrl3 --engine spark   # the same SQL on Spark

``--engine spark`` (the ``spark`` extra) runs the same matcher's SQL on a local Spark session through
``mos_pipelines.spark.duckdb_sql.SparkConnection`` (DuckDB's SQL transpiled; see docs/SPARK.md): run directory
``out/mos-spark-<dataset>``, tool ``mos-spark``. Starting the session is not timed (reported as
``spark_session_seconds``); the peak memory is this process's and the JVM's (and its Python workers').

``--settings crm`` runs the production CRM matcher (``match_crm_contacts``: ``config/identity.yaml``, resolved
against the columns the dataset fills, and default ``ClusterSettings``) on a dataset exported by
``crm_dataset.py`` or ``person_datasets.py``; blocked values are already null there, so it is given an empty
blocked-values table. ``--config`` points at another identity config (experiments only: the figures in
README.md are the default file's).

Uses the same blocking rules and comparison thresholds as the Splink run (ANCHORS.md), so the
difference measured is estimation and clustering, not configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from runfiles import peak_rss_mib, write_run  # noqa: E402

from mos_pipelines.configuration import load_identity  # noqa: E402
from mos_pipelines.identity.clustering import ClusterSettings  # noqa: E402
from mos_pipelines.identity.comparisons import exact, jaro_winkler, levenshtein  # noqa: E402
from mos_pipelines.identity.crm_matching import match_crm_contacts  # noqa: E402
from mos_pipelines.identity.matching import MatchSettings  # noqa: E402
from mos_pipelines.identity.population import cluster_settings  # noqa: E402
from mos_pipelines.identity.resolve import resolve  # noqa: E402

FEBRL_SETTINGS = MatchSettings(
    comparisons=(
        jaro_winkler("given_name", (0.92, 0.8), tf=True),
        jaro_winkler("surname", (0.92, 0.8), tf=True),
        levenshtein("date_of_birth", (1, 2)),
        levenshtein("soc_sec_id", (1, 2)),
        exact("street_number"),
        levenshtein("address_1", (2, 5)),
        levenshtein("postcode", (1,), tf=True),
        jaro_winkler("suburb", (0.9,)),
    ),
    blocking_rules=(
        ("given_name", "surname"),
        ("date_of_birth",),
        ("soc_sec_id",),
        ("postcode", "street_number"),
        ("surname", "postcode"),
    ),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="label of a directory under data/, e.g. febrl3")
    parser.add_argument("--link-threshold", type=float, help="default: ClusterSettings / the config's clustering")
    parser.add_argument("--merge-weight", type=float, help="default: ClusterSettings / the config's clustering")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--settings",
        choices=["febrl", "crm"],
        default="febrl",
        help="febrl: the ANCHORS-equivalent settings; crm: match_crm_contacts (config/identity.yaml)",
    )
    parser.add_argument(
        "--config", type=Path, help="identity config for --settings crm, merged over config/identity.yaml"
    )
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb", help="where the matcher's SQL runs")
    args = parser.parse_args()
    spark = SparkRun() if args.engine == "spark" else None
    data_dir = HERE / "data" / args.dataset
    meta = json.loads((data_dir / "dataset.json").read_text())
    records = pd.read_parquet(data_dir / "records.parquet").drop(columns=["entity_id"])
    overrides = {
        k: v for k, v in (("link_threshold", args.link_threshold), ("merge_weight", args.merge_weight)) if v is not None
    }
    cluster = dataclasses.replace(ClusterSettings(), **overrides)
    extra = {}
    load_at_start = round(os.getloadavg()[0], 2)
    if args.settings == "crm":
        records = records.rename(columns={"record_id": "contact_record_key"})
        no_blocked = pd.DataFrame({"identifier_type": pd.Series(dtype=str), "value": pd.Series(dtype=str)})
        config = load_identity(args.config)
        cluster = dataclasses.replace(cluster_settings(config), **overrides)
        start = time.perf_counter()
        matched, run = match_crm_contacts(records, no_blocked, cluster, config, con=spark and spark.connection)
        seconds = time.perf_counter() - start
        if run.resolution is None:
            raise SystemExit(f"nothing matched: {run.skip_reason}")
        result = run.resolution
        clusters = matched.rename(columns={"contact_record_key": "record_id", "match_cluster_key": "cluster_id"})
        extra = {
            "config": str(config.source),
            "comparisons": [c.name for c in run.resolved.settings.comparisons],
            "blocking_rules": [list(r) for r in run.resolved.settings.blocking_rules],
            "left_out": list(run.resolved.dropped),
        }
    else:
        start = time.perf_counter()
        result = resolve(records, "record_id", FEBRL_SETTINGS, cluster, con=spark and spark.connection)
        seconds = time.perf_counter() - start
        clusters = result.clusters
    tool = "mos-spark" if spark else "mos"
    out = args.out or HERE / "out" / f"{tool}-{args.dataset}"
    write_run(
        out,
        clusters[["record_id", "cluster_id"]],
        {
            "load_average_start": load_at_start,
            "tool": tool,
            "settings": args.settings,
            "tool_version": "0.1.0",
            "dataset": meta.get("name", args.dataset),
            "data_dir": str(data_dir),
            "link_type": "dedupe_only",
            "records": len(records),
            "comparisons": result.model.candidate_pairs,
            "seconds": round(seconds, 2),
            "peak_rss_mib": round(peak_rss_mib() + (spark.peak_rss_mib() if spark else 0)),
            **(spark.figures() if spark else {}),
            "stages": {k: round(v, 2) for k, v in result.seconds.items()},
            "em_iterations": result.model.iterations,
            "em_converged": result.model.converged,
            "lambda": result.model.lam,
            "cluster_settings": dataclasses.asdict(cluster),
            **({"mos_settings": extra} if extra else {}),
        },
        edges=result.links.rename(columns={"match_probability": "match_probability"})[
            ["record_id_l", "record_id_r", "match_probability"]
        ],
    )
    print(
        f"{args.dataset}: {len(records)} records, {result.model.candidate_pairs} pairs, {seconds:.1f} s, "
        f"stages {result.seconds}, EM {result.model.iterations} it (converged {result.model.converged}) → {out}"
    )


class SparkRun:
    """The Spark session and connection of an ``--engine spark`` run, and its memory figures."""

    def __init__(self) -> None:
        from mos_pipelines.spark.duckdb_sql import SparkConnection, identity_spark_session

        start = time.perf_counter()
        self.connection = SparkConnection(identity_spark_session())
        self.session_seconds = time.perf_counter() - start

    def _processes(self) -> dict[str, list]:
        """The JVM (a child of this process) and its Python workers."""
        import psutil

        children = psutil.Process().children(recursive=True)
        jvm = [p for p in children if p.name() == "java"]
        return {"jvm": jvm, "workers": [p for p in children if p not in jvm]}

    @staticmethod
    def _peak_mib(process) -> float:
        """Peak resident memory (VmHWM) of a live process."""
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def peak_rss_mib(self) -> float:
        """The JVM's and the Python workers' peaks (each its own; they need not coincide)."""
        return sum(self._peak_mib(p) for group in self._processes().values() for p in group)

    def figures(self) -> dict:
        groups = self._processes()
        return {
            "engine": "spark",
            "spark_session_seconds": round(self.session_seconds, 2),
            "driver_peak_rss_mib": round(peak_rss_mib()),
            "jvm_peak_rss_mib": round(sum(self._peak_mib(p) for p in groups["jvm"])),
            "python_workers_peak_rss_mib": round(sum(self._peak_mib(p) for p in groups["workers"])),
            "spark_statements": len(self.connection.statements),
            "spark_slowest_statements": [
                [round(seconds, 2), sql] for sql, seconds in sorted(self.connection.statements, key=lambda x: -x[1])[:5]
            ],
        }


if __name__ == "__main__":
    main()
