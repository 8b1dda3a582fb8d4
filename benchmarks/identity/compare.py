"""Score matcher runs against the truth with mos_pipelines.identity.evaluation; print a markdown table.

    .venv/bin/python benchmarks/identity/compare.py --run benchmarks/identity/out/splink-febrl3
    .venv/bin/python benchmarks/identity/compare.py --run out/splink-synthetic-n10000-s42 out/mos-synthetic-n10000-s42

Each ``--run`` is a run directory (see runfiles.py / README.md: clusters.parquet with record_id and
cluster_id, optional edges.parquet, run.json naming the tool and the dataset directory). The truth is the
dataset directory's truth.csv, read with ``load_truth_csv``. Any tool that writes that directory — Splink
via splink_bench.py, or our own matcher — is scored the same way. One JSON line per run is appended to
benchmarks/results/identity.jsonl (``--no-append`` to skip).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "identity.jsonl"
sys.path.insert(0, str(HERE))

from runfiles import read_run  # noqa: E402

from mos_pipelines.identity.evaluation import IdentityEvaluation, evaluate, load_truth_csv  # noqa: E402

HEADER = (
    "| dataset | tool | pairwise P | pairwise R | pairwise F1 | clustered P | clustered R | clustered F1 "
    "| largest cluster pred / true | over-merged clusters | seconds | peak RSS MiB |"
)
RULE = "|" + "---|" * (HEADER.count("|") - 1)


def load_truth(data_dir: Path) -> tuple[pd.Series, pd.Series | None]:
    """truth.csv → (record_id → true entity, record_id → source or None for a single-source dataset)."""
    truth = load_truth_csv(data_dir / "truth.csv")
    record_ids = truth.index.get_level_values("source_record_id")
    if not record_ids.is_unique:
        raise SystemExit(
            f"{data_dir / 'truth.csv'}: source_record_id is not unique across sources; the run "
            "files key records by record_id alone"
        )
    sources = pd.Series(truth.index.get_level_values("source"), index=record_ids)
    by_record = pd.Series(truth.to_numpy(), index=record_ids, name="true_entity_id")
    return by_record, (sources if sources.nunique() > 1 else None)


TruthCache = dict[Path, tuple[pd.Series, "pd.Series | None"]]


def score(run_dir: Path, truth_cache: TruthCache) -> tuple[dict, IdentityEvaluation]:
    meta, clusters, edges = read_run(run_dir)
    data_dir = Path(meta["data_dir"])
    if data_dir not in truth_cache:
        truth_cache[data_dir] = load_truth(data_dir)
    truth, sources = truth_cache[data_dir]
    predicted = pd.Series(clusters["cluster_id"].to_numpy(), index=pd.Index(clusters["record_id"].astype(str)))
    edge_pairs = edges[["record_id_l", "record_id_r"]].astype(str) if edges is not None else None
    result = evaluate(predicted, truth, edges=edge_pairs, sources=sources)
    return meta, result


def row(meta: dict, result: IdentityEvaluation) -> str:
    c = result.clusters
    e = result.edges
    pairwise = f"{e.pairs.precision:.4f} | {e.pairs.recall:.4f} | {e.pairs.f1:.4f}" if e is not None else "– | – | –"
    kind = {"link_only": " (link)", "dedupe_only": " (dedupe)"}.get(meta.get("link_type", ""), "")
    return (
        f"| {meta['dataset']}{kind} | {meta['tool']} | {pairwise} | {c.pairs.precision:.4f} | {c.pairs.recall:.4f} "
        f"| {c.pairs.f1:.4f} | {c.largest_predicted_cluster:,} / {c.largest_true_entity:,} "
        f"| {c.over_merged_clusters:,} | {meta['seconds']:.1f} | {meta['peak_rss_mib']:,.0f} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, nargs="+", required=True, help="run directories to score")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON lines file to append to")
    parser.add_argument("--no-append", action="store_true", help="print only")
    parser.add_argument("--details", action="store_true", help="also print each run's full evaluation")
    args = parser.parse_args(argv)

    truth_cache: TruthCache = {}
    rows, details, lines = [], [], []
    for run_dir in args.run:
        try:
            meta, result = score(run_dir, truth_cache)
        except (FileNotFoundError, ValueError) as exc:
            sys.exit(f"error: {exc}")
        rows.append(row(meta, result))
        details.append(f"### {meta['dataset']} — {meta['tool']}\n\n{result.to_markdown()}")
        record = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "run_dir": str(run_dir.resolve()),
            **{k: v for k, v in meta.items() if k not in ("stages",)},
            "stages": meta.get("stages"),
            **result.as_dict(),
        }
        lines.append(json.dumps(record, default=str))

    print(HEADER)
    print(RULE)
    print("\n".join(rows))
    if args.details:
        print("\n" + "\n\n".join(details))
    if not args.no_append:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with args.results.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        print(f"\nappended {len(lines)} line(s) to {args.results}")


if __name__ == "__main__":
    main()
