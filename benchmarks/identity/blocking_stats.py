"""Candidate-pair count and blocking recall of the CRM blocking rules on a dataset directory.

    .venv/bin/python benchmarks/identity/blocking_stats.py --dataset sim-crm-1m
    .venv/bin/python benchmarks/identity/blocking_stats.py --dataset sim-crm-1m --rules previous

Per rule: the pairs it blocks (Σ n·(n−1)/2 over its key values, from a GROUP BY — no pairs are
materialised; with ``unless_both_have`` only pairs of records whose filled columns do not overlap, in blocks
over ``in_blocks_over``), its largest block, its recall (share of true pairs, records with the same
``entity_id``, that agree on every key of the rule — the matcher's own join condition) and the true pairs no
other rule pairs. Then the
recall of the union of the rules and, when the rules' pair sum is at most ``--max-union``, the exact
number of distinct candidate pairs from the matcher's own ``block`` (which does materialise them).
``--rules current`` is ``config/identity.yaml`` (``--config`` another file) resolved against the columns
the dataset fills, with its ``max_block_size`` (a key value shared by more records pairs none of them:
counted here as such); ``previous`` is the rule set before the bounded-blocking change (308,092,831 pairs
at 1M), kept for the before/after figures, without a cap. Uses ``entity_id`` (truth).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd

from mos_pipelines.configuration import load_identity
from mos_pipelines.identity.crm_matching import match_frame, prepare
from mos_pipelines.identity.matching import _rule_sql, block, block_size_cap, unless_both_have
from mos_pipelines.warehouse import scalar

HERE = Path(__file__).resolve().parent
SORTED_NAMES = (
    "least({t}.first_name_norm, {t}.last_name_norm) || '|' || greatest({t}.first_name_norm, {t}.last_name_norm)"
)

PREVIOUS_RULES = (
    ("first_name_norm", "last_name_norm"),
    (SORTED_NAMES,),
    ("email_match_key",),
    ("phone_e164",),
    ("last_name_norm", "postcode_norm"),
    ("first_name_norm", "company_norm"),
    ("last_name_norm", "company_norm"),
)


def rule_label(rule: tuple[str, ...]) -> str:
    return " + ".join("sorted names" if e == SORTED_NAMES else e.replace("{t}.", "") for e in rule)


def key_sql(expr: str) -> str:
    return expr.format(t="r") if "{t}" in expr else f"r.{expr}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="label of a directory under data/, e.g. sim-crm-1m")
    parser.add_argument("--rules", choices=["current", "previous"], default="current")
    parser.add_argument(
        "--max-union",
        type=int,
        default=60_000_000,
        help="materialise the union (exact distinct pair count) only up to this pair sum",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config", type=Path, help="identity config merged over config/identity.yaml")
    args = parser.parse_args()
    data_dir = HERE / "data" / args.dataset
    if not (data_dir / "records.parquet").exists():
        parser.error(f"{data_dir}: no records.parquet (write it with crm_dataset.py)")

    records = pd.read_parquet(data_dir / "records.parquet")
    truth = records[["record_id", "entity_id"]].rename(columns={"record_id": "contact_record_key"})
    no_blocked = pd.DataFrame({"identifier_type": pd.Series(dtype=str), "value": pd.Series(dtype=str)})
    frame = match_frame(records.rename(columns={"record_id": "contact_record_key"}), no_blocked)
    frame = frame.merge(truth, on="contact_record_key")  # entity_id: truth, used for recall only

    con = duckdb.connect()
    con.execute(f"set threads = {args.threads}")
    resolved = prepare(con, frame, load_identity(args.config))
    if args.rules == "current":
        settings = resolved.settings
    else:
        settings = dataclasses.replace(resolved.settings, blocking_rules=PREVIOUS_RULES, max_block_size=None)
    rules = settings.blocking_rules
    caps = [block_size_cap(settings, rule) or 2**62 for rule in rules]
    for i, rule in enumerate(rules):  # the size of each record's block, per rule (the cap's input)
        keys = ", ".join(e.format(t="_mx_records") if "{t}" in e else e for e in rule)
        con.execute(
            f"create or replace temp table _mx_records as select *, count(*) over (partition by {keys}) "
            f"as _bn_{i} from _mx_records order by _rid"
        )
    con.execute(
        "create temp table _true_pairs as select l._rid as id_l, r._rid as id_r from _mx_records l "
        "join _mx_records r on l.entity_id = r.entity_id and l._rid < r._rid"
    )
    n_true = scalar(con, "select count(*) from _true_pairs")
    conditions = []
    for i, rule in enumerate(rules):
        unless, over = unless_both_have(settings, rule)
        both = " and ".join(f"(l.{c} is null or r.{c} is null)" for c in unless)
        conditions.append(f" and (l._bn_{i} <= {over} or ({both}))" if both else "")
    flags = ", ".join(
        f"coalesce({_rule_sql(rule)} and l._bn_{i} <= {caps[i]}{conditions[i]}, false) as rule_{i}"
        for i, rule in enumerate(rules)
    )
    con.execute(
        f"create temp table _true_flags as select {flags} from _true_pairs p "
        f"join _mx_records l on l._rid = p.id_l join _mx_records r on r._rid = p.id_r"
    )

    print(
        f"{args.dataset}: {len(frame):,} records, {n_true:,} true pairs, rules: {args.rules}, "
        f"max block size: {settings.max_block_size}\n"
    )
    print(
        "| rule | candidate pairs | largest block kept | recall (true pairs) | true pairs only this rule finds |\n"
        "|---|---|---|---|---|"
    )
    total = 0
    for i, rule in enumerate(rules):
        keys = [key_sql(e) for e in rule]
        not_null = " and ".join(f"({k}) is not null" for k in keys)
        unless, over = unless_both_have(settings, rule)
        # records by which of the unless_both_have columns they fill (a bit each): two records pair when
        # their bits do not overlap (no column filled on both)
        pattern = " + ".join(f"(r.{c} is not null)::int * {1 << k}" for k, c in enumerate(unless)) or "0"
        groups = (
            f"select {', '.join(f'{k} as k{j}' for j, k in enumerate(keys))}, {pattern} as bits, count(*) as n, "
            f"sum(count(*)) over (partition by {', '.join(keys)}) as size "
            f"from _mx_records r where {not_null} group by {', '.join(f'k{j}' for j in range(len(keys)))}, bits"
        )
        same = " and ".join(f"a.k{j} = b.k{j}" for j in range(len(keys)))
        pairs, largest = con.execute(
            f"with g as (select * from ({groups}) where size <= {caps[i]}) "
            f"select (select coalesce(sum(case when a.bits = b.bits then a.n * (a.n - 1) / 2 else a.n * b.n end), 0) "
            f"from g a join g b on {same} and a.bits <= b.bits and (a.size <= {over} or a.bits & b.bits = 0))::bigint, "
            f"(select coalesce(max(size), 0) from g)"
        ).fetchall()[0]
        recall = scalar(con, f"select avg(rule_{i}::int) from _true_flags")
        others = " or ".join(f"rule_{j}" for j in range(len(rules)) if j != i) or "false"
        only = scalar(con, f"select count(*) from _true_flags where rule_{i} and not ({others})")
        total += pairs
        over_text = f" in blocks over {over}" if over else ""
        label = rule_label(rule) + (f" (unless both have {', '.join(unless)}{over_text})" if unless else "")
        print(f"| {label} | {pairs:,} | {largest:,} | {recall:.4f} | {only:,} |")
    any_rule = " or ".join(f"rule_{i}" for i in range(len(rules)))
    covered = scalar(con, f"select count(*) from _true_flags where {any_rule}")
    print(f"| sum over rules | {total:,} | | |")
    if total <= args.max_union:
        t0 = time.perf_counter()
        union = block(con, settings)
        union_text = f"{union:,} (matcher's block, {time.perf_counter() - t0:.0f} s)"
    else:
        union_text = f"not materialised (sum {total:,} > --max-union)"
    print(f"| **union** | {union_text} | | **{covered / n_true:.4f}** ({n_true - covered:,} true pairs missed) |")


if __name__ == "__main__":
    sys.exit(main())
