"""Export a built warehouse's CRM contacts (the simulator's data) as a benchmark dataset directory.

    .venv/bin/python benchmarks/identity/crm_dataset.py --warehouse /tmp/id10k/warehouse.duckdb \
        --truth /tmp/id10k/truth/identity_truth.csv --label sim-crm-10k

Reads ``intermediate.int_crm_contacts__normalised`` and the seed ``staging.identity_blocked_values``
read-only and writes ``benchmarks/identity/data/<label>/`` in the README's format:

- ``records.parquet`` — ``record_id`` (= ``contact_record_key``, e.g. ``hubspot:123``), ``source``
  (``source_system``), ``entity_id`` (truth — a matcher must not read it), then the matching columns
  ``first_name_norm, last_name_norm, full_name_norm, recorded_full_name_norm, email_match_key,
  phone_e164, birth_date (YYYY-MM-DD text), postcode_norm, company_norm, city_norm, job_title_norm``. Junk emails/phones from the blocked-values seed are already
  null, exactly as ``mos_pipelines.identity.crm_matching.drop_blocked_values`` does, so both matchers
  see the same values.
- ``truth.csv`` — ``source, source_record_id, true_entity_id`` for the CRM rows only (hubspot,
  salesforce, webinar; ``--sources`` for others, e.g. ``generic`` for a bring-your-own export). ``source_record_id`` is written as the record key ``<source>:<id>`` so it is
  unique across sources and equals ``record_id`` (compare.py keys records by it alone).
- ``dataset.json`` — label, size, link type (``dedupe_only``), sources, where it came from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
import pandas as pd

from mos_pipelines.identity.crm_matching import drop_blocked_values
from mos_pipelines.identity.evaluation import load_truth_csv

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from runfiles import finish_dataset  # noqa: E402

CRM_SOURCES = ("hubspot", "salesforce", "webinar")
COLUMNS = (
    "first_name_norm",
    "last_name_norm",
    "full_name_norm",
    "recorded_full_name_norm",
    "email_match_key",
    "phone_e164",
    "birth_date",
    "postcode_norm",
    "company_norm",
    "city_norm",
    "job_title_norm",
)


def export(
    warehouse: Path,
    truth_path: Path,
    out: Path,
    label: str,
    sources: tuple[str, ...] = CRM_SOURCES,
    dataset: str = "simulator CRM contacts",
) -> dict:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        records = con.execute(
            f"""select contact_record_key, source_system, {", ".join(c for c in COLUMNS if c != "birth_date")},
                       strftime(birth_date, '%Y-%m-%d') as birth_date
                from intermediate.int_crm_contacts__normalised
                where source_system in (select unnest(?)) order by contact_record_key""",
            [list(sources)],
        ).df()
        blocked = con.execute("select identifier_type, value from staging.identity_blocked_values").df()
    finally:
        con.close()
    if not records["contact_record_key"].is_unique:
        raise SystemExit("contact_record_key is not unique")
    before = records[["email_match_key", "phone_e164"]].notna().sum()
    records = drop_blocked_values(records, blocked)
    nulled = {k: int(v) for k, v in (before - records[["email_match_key", "phone_e164"]].notna().sum()).items()}

    truth = load_truth_csv(truth_path).rename("true_entity_id").reset_index()
    truth = truth[truth["source"].isin(sources)].copy()
    truth["source_record_id"] = truth["source"] + ":" + truth["source_record_id"]
    entity = truth.set_index("source_record_id")["true_entity_id"]
    missing = ~records["contact_record_key"].isin(entity.index)
    if missing.any():
        raise SystemExit(
            f"{int(missing.sum())} CRM records have no truth row, e.g. "
            f"{records.loc[missing, 'contact_record_key'].head(3).tolist()}"
        )
    extra = ~truth["source_record_id"].isin(records["contact_record_key"])
    if extra.any():
        print(f"note: {int(extra.sum())} CRM truth rows have no record in the warehouse; dropped")
        truth = truth[~extra]

    frame = pd.DataFrame(
        {
            "record_id": records["contact_record_key"].astype(str),
            "source": records["source_system"].astype(str),
            "entity_id": records["contact_record_key"].map(entity).astype(str),
        }
    )
    for column in COLUMNS:
        values = records[column].astype("string").str.strip()
        frame[column] = values.mask(values == "")
    frame = frame.reset_index(drop=True)

    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "records.parquet.tmp", index=False)
    truth[["source", "source_record_id", "true_entity_id"]].to_csv(out / "truth.csv.tmp", index=False)
    meta = {
        "dataset": dataset,
        "label": label,
        "records": len(frame),
        "link_type": "dedupe_only",
        "sources": sorted(frame["source"].unique().tolist()),
        "true_entities": int(frame["entity_id"].nunique()),
        "params": {
            "warehouse": str(warehouse),
            "truth": str(truth_path),
            "table": "intermediate.int_crm_contacts__normalised",
            "blocked_values": "staging.identity_blocked_values (emails/phones nulled)",
            "blocked_values_nulled": nulled,
        },
    }
    finish_dataset(out, meta)
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, required=True, help="a built warehouse.duckdb (read-only)")
    parser.add_argument("--truth", type=Path, required=True, help="the simulator's identity_truth.csv")
    parser.add_argument("--label", required=True, help="e.g. sim-crm-10k")
    parser.add_argument("--out", type=Path, help="dataset directory (default benchmarks/identity/data/<label>)")
    parser.add_argument("--sources", nargs="+", default=list(CRM_SOURCES), help="CRM systems to export")
    args = parser.parse_args(argv)
    out = args.out or HERE / "data" / args.label
    meta = export(args.warehouse, args.truth, out, args.label, tuple(args.sources))
    print(
        f"{meta['label']}: {meta['records']:,} records, {meta['true_entities']:,} true entities, "
        f"sources {meta['sources']} → {out}"
    )


if __name__ == "__main__":
    main()
