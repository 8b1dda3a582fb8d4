"""Our matcher on a benchmark dataset directory (see README), written as a run directory for compare.py.

    .venv/bin/python benchmarks/identity/mos_bench.py --dataset febrl3
    .venv/bin/python benchmarks/identity/mos_bench.py --dataset sim-crm-10k --settings crm

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
    args = parser.parse_args()
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
        matched, run = match_crm_contacts(records, no_blocked, cluster, config)
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
        result = resolve(records, "record_id", FEBRL_SETTINGS, cluster)
        seconds = time.perf_counter() - start
        clusters = result.clusters
    out = args.out or HERE / "out" / f"mos-{args.dataset}"
    write_run(
        out,
        clusters[["record_id", "cluster_id"]],
        {
            "load_average_start": load_at_start,
            "tool": "mos",
            "settings": args.settings,
            "tool_version": "0.1.0",
            "dataset": meta.get("name", args.dataset),
            "data_dir": str(data_dir),
            "link_type": "dedupe_only",
            "records": len(records),
            "comparisons": result.model.candidate_pairs,
            "seconds": round(seconds, 2),
            "peak_rss_mib": round(peak_rss_mib()),
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


if __name__ == "__main__":
    main()
