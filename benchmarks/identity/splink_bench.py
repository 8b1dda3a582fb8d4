"""Splink 5.0.0 (DuckDB backend) on a benchmark dataset, with the settings in /work/shared/ANCHORS.md.

Runs in its own venv (``bash benchmarks/identity/setup_splink.sh``), never the project's:

    benchmarks/identity/.venv-splink/bin/python benchmarks/identity/splink_bench.py --dataset febrl3
    benchmarks/identity/.venv-splink/bin/python benchmarks/identity/splink_bench.py --dataset synthetic --n 10000
    benchmarks/identity/.venv-splink/bin/python benchmarks/identity/splink_bench.py --dataset sim-crm-10k --settings crm

``--settings crm`` runs the simulator's CRM contacts (a dataset directory written by ``crm_dataset.py``)
with Splink's standard comparisons and our CRM blocking rules (``crm_settings`` below).

The dataset directory (records.parquet, truth.csv) is prepared first by ``febrl.py`` in the project venv
if it is not there yet (that step is not timed). Timed, as one wall-clock span: registering the records
with DuckDB, λ from deterministic rules, u by random sampling, two EM passes, predict, connected
components, and pulling clusters and edges back into pandas. Peak RSS is the process's ``ru_maxrss``
taken right after that span (it includes reading the parquet input). Afterwards, untimed: the exact
number of blocked comparisons, and the outputs

    <out>/clusters.parquet  record_id, cluster_id (connected components at p ≥ 0.9)
    <out>/edges.parquet     record_id_l, record_id_r, match_probability (scored pairs with p ≥ 0.9)
    <out>/run.json          wall time, peak RSS, stage times, counts, λ, versions
    <out>/model.json        the trained Splink model

Score them with ``.venv/bin/python benchmarks/identity/compare.py --run <out>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from runfiles import FEBRL_COLUMNS, peak_rss_mib, write_run  # noqa: E402

PREDICT_THRESHOLD = 0.01
CLUSTER_THRESHOLD = 0.9


def settings(link_type: str):
    """The ANCHORS.md settings, verbatim."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="record_id",
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("postcode", "street_number"),
            block_on("surname", "postcode"),
        ],
        comparisons=[
            cl.JaroWinklerAtThresholds("given_name", [0.92, 0.8]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("surname", [0.92, 0.8]).configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.LevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number"),
            cl.LevenshteinAtThresholds("address_1", [2, 5]),
            cl.LevenshteinAtThresholds("postcode", [1]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("suburb", [0.9]),
        ],
    )


def deterministic_rules():
    from splink import block_on

    return [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")]


CRM_COLUMNS = [
    "first_name_norm",
    "last_name_norm",
    "email_match_key",
    "phone_e164",
    "birth_date",
    "postcode_norm",
    "company_norm",
]


# First and last name in either order (our crm_matching.SORTED_NAMES is least || '|' || greatest: the same pairs).
SORTED_NAMES = ("least(first_name_norm, last_name_norm)", "greatest(first_name_norm, last_name_norm)")


def crm_settings(link_type: str):
    """Our CRM blocking rules (mos_pipelines.identity.crm_matching) with Splink's standard comparisons.

    The sorted names (first/last name in either order) are expressed in block_on as least()/greatest()
    of the two names, the other keys as the same SQL expressions ours use: both tools block the same
    pairs. Not reproduced: our names_swapped comparison and our combined workplace comparison
    (company+postcode as one piece of evidence); Splink gets company and postcode as two independent
    comparisons, its standard way. Email's typo level is plain Levenshtein ≤ 1 (ours also requires the same
    digits). Phone is exact only: with a Levenshtein ≤ 1 level (ours), EM in the first+last-name session
    (the name session before the bounded blocking rules) drove that level's m probability to 0.0 on this
    data and Splink 5 raised ValueError ("m_probability value 0.0 is below the minimum allowed value").
    Birth date: Splink's DateOfBirthComparison (ours: Levenshtein ≤ 1 on YYYYMMDD).
    """
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="record_id",
        blocking_rules_to_generate_predictions=[
            block_on("email_match_key"),
            block_on("phone_e164"),
            block_on("first_name_norm", "company_norm"),
            block_on("last_name_norm", "company_norm"),
            block_on("last_name_norm", "postcode_norm", "substr(first_name_norm, 1, 2)"),
            block_on(*SORTED_NAMES, "postcode_norm"),
            block_on(*SORTED_NAMES, "split_part(company_norm, ' ', 1)"),
            block_on(*SORTED_NAMES, "split_part(email_match_key, '@', 2)"),
        ],
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name_norm", [0.92, 0.8]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("last_name_norm", [0.92, 0.8]).configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("email_match_key", [1]).configure(term_frequency_adjustments=True),
            # Levenshtein ≤ 1 (ours) stops Splink's EM: that level's m reaches 0.0 and Splink 5 raises.
            cl.ExactMatch("phone_e164").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True, datetime_format="%Y-%m-%d"),
            cl.JaroWinklerAtThresholds("company_norm", [0.9]),
            cl.ExactMatch("postcode_norm"),
        ],
    )


# --settings person: Splink's own example for its historical_50k set (docs/demos/examples/duckdb/
# deduplicate_50k_synthetic), on the columns of a person dataset exported through our CRM path
# (person_datasets.py): first_name_norm / last_name_norm (its first_name / surname), birth_date (dob),
# postcode_norm (postcode_fake), city_norm (birth_place), job_title_norm (occupation), email_match_key.
# Comparisons and rules naming a column the dataset does not fill (below 10 % of records) are left out,
# as ours are; email (fake_1000) gets Splink's EmailComparison and a block of its own.
PERSON_COLUMNS = [
    "first_name_norm",
    "last_name_norm",
    "birth_date",
    "postcode_norm",
    "city_norm",
    "job_title_norm",
    "email_match_key",
]


def _filled(records: pd.DataFrame, column: str) -> bool:
    return column in records and records[column].notna().mean() >= 0.1


def person_settings(link_type: str, records: pd.DataFrame):
    """Splink's recommended settings for historical_50k, restricted to the columns ``records`` fills."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    has = {c: _filled(records, c) for c in PERSON_COLUMNS}
    rules = [
        ("substr(first_name_norm,1,3)", "substr(last_name_norm,1,4)"),
        ("last_name_norm", "birth_date"),
        ("first_name_norm", "birth_date"),
        ("postcode_norm", "first_name_norm"),
        ("postcode_norm", "last_name_norm"),
        ("birth_date", "city_norm"),
        ("substr(postcode_norm,1,3)", "birth_date"),
        ("substr(postcode_norm,1,3)", "first_name_norm"),
        ("substr(postcode_norm,1,3)", "last_name_norm"),
        ("substr(first_name_norm,1,2)", "substr(last_name_norm,1,2)", "substr(birth_date,1,4)"),
        ("email_match_key",),
    ]
    rules = [r for r in rules if all(has[c] for c in PERSON_COLUMNS if any(c in k for k in r))]
    comparisons = [
        cl.ForenameSurnameComparison(
            "first_name_norm", "last_name_norm", forename_surname_concat_col_name="first_name_surname_concat"
        )
    ]
    if has["birth_date"]:
        comparisons.append(cl.DateOfBirthComparison("birth_date", input_is_string=True))
    if has["postcode_norm"]:
        comparisons.append(cl.PostcodeComparison("postcode_norm"))
    if has["city_norm"]:
        comparisons.append(cl.ExactMatch("city_norm").configure(term_frequency_adjustments=True))
    if has["job_title_norm"]:
        comparisons.append(cl.ExactMatch("job_title_norm").configure(term_frequency_adjustments=True))
    if has["email_match_key"]:
        comparisons.append(cl.EmailComparison("email_match_key"))
    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="record_id",
        blocking_rules_to_generate_predictions=[block_on(*r) for r in rules],
        comparisons=comparisons,
    ), has


def person_deterministic_rules(has: dict[str, bool]):
    from splink import block_on

    rules = [block_on("first_name_norm", "last_name_norm", "birth_date")]
    if has["postcode_norm"]:
        rules.append(block_on("substr(first_name_norm,1,2)", "last_name_norm", "substr(postcode_norm,1,2)"))
        rules.append(block_on("birth_date", "postcode_norm"))
    if has["email_match_key"]:
        rules.append(block_on("email_match_key"))
    return rules


PERSON_CLUSTER_THRESHOLD = 0.95  # the example's


def crm_deterministic_rules():
    from splink import block_on

    return [block_on("email_match_key"), block_on("phone_e164")]


def ensure_data(dataset: str, n: int | None, seed: int, data_dir: Path | None, project_python: str) -> Path:
    """The dataset directory, prepared with febrl.py in the project venv when absent (untimed)."""
    if data_dir is None:
        label = f"synthetic-n{n}-s{seed}" if dataset == "synthetic" else dataset
        data_dir = HERE / "data" / label
    if not (data_dir / "dataset.json").is_file():
        cmd = [
            project_python,
            str(HERE / "febrl.py"),
            "--dataset",
            dataset,
            "--seed",
            str(seed),
            "--out",
            str(data_dir),
        ]
        if n is not None:
            cmd += ["--n", str(n)]
        print("preparing data:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    return data_dir


def run(
    records: pd.DataFrame,
    link_type: str,
    label: str,
    u_seed: int | None,
    verbose: bool,
    threads: int | None = None,
    mode: str = "febrl",
    em_postcode_rule: tuple[str, ...] = ("postcode",),
) -> dict:
    import duckdb
    from splink import DuckDBAPI, Linker, block_on

    stages: dict[str, float] = {}
    start = last = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        stages[name] = round(now - last, 3)
        last = now

    crm = mode == "crm"
    person = mode == "person"
    if person:
        columns = ["record_id", *[c for c in PERSON_COLUMNS if c in records]]
        records = records.assign(
            first_name_surname_concat=records["first_name_norm"].str.cat(records["last_name_norm"], sep=" ")
        )
        columns.append("first_name_surname_concat")
    else:
        columns = ["record_id", *(CRM_COLUMNS if crm else FEBRL_COLUMNS)]
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"set threads = {int(threads)}").fetchall()
    db_api = DuckDBAPI(connection=con)
    if link_type == "link_only":
        inputs = [
            db_api.register(
                records.loc[records["source"] == s, columns].reset_index(drop=True),
                dataset_display_name=f"{label}_{s}".replace("-", "_"),
            )
            for s in sorted(records["source"].unique())
        ]
    else:
        inputs = db_api.register(records[columns], dataset_display_name=label.replace("-", "_"))
    if person:
        person_creator, has = person_settings(link_type, records)
    creator = person_creator if person else crm_settings(link_type) if crm else settings(link_type)
    linker = Linker(inputs, creator, log_level=logging.INFO if verbose else logging.WARNING)
    stage("register")

    if person:
        linker.training.estimate_probability_two_random_records_match(person_deterministic_rules(has), recall=0.6)
    else:
        linker.training.estimate_probability_two_random_records_match(
            crm_deterministic_rules() if crm else deterministic_rules(), recall=0.8
        )
    stage("lambda")
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=u_seed)
    stage("u")
    if person:
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("first_name_norm", "last_name_norm"), estimate_without_term_frequencies=True
        )
        if has["birth_date"]:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on("birth_date"), estimate_without_term_frequencies=True
            )
    elif crm:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*SORTED_NAMES, "postcode_norm"))
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("email_match_key"))
    else:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*em_postcode_rule))
    stage("em")
    predictions = linker.inference.predict(threshold_match_probability=PREDICT_THRESHOLD)
    stage("predict")
    cluster_threshold = PERSON_CLUSTER_THRESHOLD if person else CLUSTER_THRESHOLD
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=cluster_threshold
    )
    stage("cluster")
    clusters = clustered.query_sql(f"select record_id, cluster_id from {clustered.physical_name}").as_pandas_dataframe()
    edges = predictions.query_sql(
        f"select record_id_l, record_id_r, match_probability from {predictions.physical_name} "
        f"where match_probability >= {cluster_threshold}"
    ).as_pandas_dataframe()
    n_predictions = int(
        predictions.query_sql(f"select count(*) as n from {predictions.physical_name}")
        .as_pandas_dataframe()["n"]
        .iloc[0]
    )
    stage("collect")
    seconds = time.perf_counter() - start
    peak = peak_rss_mib()

    return {
        "linker": linker,
        "inputs": inputs,
        "clusters": clusters,
        "edges": edges,
        "seconds": seconds,
        "peak_rss_mib": peak,
        "stages": stages,
        "predictions_p001": n_predictions,
        "lambda": linker._settings_obj._probability_two_random_records_match,
        "duckdb_version": duckdb.__version__,
        "threads": int(con.execute("select current_setting('threads')").fetchall()[0][0]),
    }


def count_comparisons(result: dict, link_type: str) -> int:
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    rules = result["linker"]._settings_obj._blocking_rules_to_generate_predictions
    counts = count_comparisons_from_blocking_rules(
        result["inputs"],
        blocking_rules=[r.blocking_rule_sql for r in rules],
        link_type=link_type,
        unique_id_column_name="record_id",
        record_sample_proportion=1.0,
    )
    return int(counts[-1]["cumulative_comparison_count"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dataset",
        required=True,
        help="febrl1-4 or synthetic (--settings febrl); a crm_dataset.py label such as sim-crm-10k (--settings crm)",
    )
    parser.add_argument(
        "--settings",
        choices=["febrl", "crm", "person"],
        default="febrl",
        help="febrl: ANCHORS settings; crm: our CRM blocking rules with Splink's comparisons; "
        "person: Splink's historical_50k example settings (person_datasets.py datasets)",
    )
    parser.add_argument("--n", type=int, help="records (synthetic only)")
    parser.add_argument("--seed", type=int, default=42, help="synthetic data seed")
    parser.add_argument("--out", type=Path, help="run directory (default benchmarks/identity/out/splink-<label>)")
    parser.add_argument("--data-dir", type=Path, help="dataset directory (default benchmarks/identity/data/<label>)")
    parser.add_argument(
        "--link-type",
        choices=["dedupe_only", "link_only"],
        help="default: link_only for FEBRL4 (A↔B), dedupe_only otherwise",
    )
    parser.add_argument(
        "--u-seed",
        type=int,
        default=None,
        help="seed for u random sampling (default: unseeded, Splink's standard; slower when set)",
    )
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, i.e. all cores)")
    parser.add_argument("--no-count", action="store_true", help="skip the (untimed) exact comparison count")
    parser.add_argument(
        "--project-python",
        default=os.environ.get("MOS_PYTHON", str(ROOT / ".venv/bin/python")),
        help="python of the project venv, used to prepare data",
    )
    parser.add_argument("--verbose", action="store_true", help="Splink's INFO logging")
    parser.add_argument(
        "--em-postcode-with-street-number",
        action="store_true",
        help="block the second EM session on postcode + street_number instead of postcode alone "
        "(a deviation from ANCHORS: on the synthetic 1M set a postcode-only block is 417M pairs)",
    )
    args = parser.parse_args(argv)

    import splink

    if args.settings in ("crm", "person"):
        data_dir = args.data_dir or HERE / "data" / args.dataset
        if not (data_dir / "dataset.json").is_file():
            parser.error(f"{data_dir}: no dataset; write it first with crm_dataset.py (project venv)")
    elif args.dataset not in ("febrl1", "febrl2", "febrl3", "febrl4", "synthetic"):
        parser.error("--dataset must be febrl1-4 or synthetic with --settings febrl")
    else:
        data_dir = ensure_data(args.dataset, args.n, args.seed, args.data_dir, args.project_python)
    meta = json.loads((data_dir / "dataset.json").read_text())
    records = pd.read_parquet(data_dir / "records.parquet")
    label = meta["label"]
    link_type = args.link_type or meta["link_type"]
    out = args.out or HERE / "out" / f"splink-{label}{'-dedupe' if link_type != meta['link_type'] else ''}"

    print(f"Splink {splink.__version__} on {label} ({len(records):,} records, {link_type})", flush=True)
    em_rule = ("postcode", "street_number") if args.em_postcode_with_street_number else ("postcode",)
    load_at_start = round(os.getloadavg()[0], 2)
    result = run(
        records, link_type, label, args.u_seed, args.verbose, args.threads, mode=args.settings, em_postcode_rule=em_rule
    )
    comparisons = None if args.no_count else count_comparisons(result, link_type)

    run_meta = {
        "tool": "splink",
        "tool_version": splink.__version__,
        "settings": args.settings,
        "duckdb_version": result["duckdb_version"],
        "dataset": label,
        "data_dir": str(data_dir),
        "link_type": link_type,
        "records": len(records),
        "seconds": round(result["seconds"], 3),
        "peak_rss_mib": round(result["peak_rss_mib"], 1),
        "stages": result["stages"],
        "comparisons": comparisons,
        "predictions_p001": result["predictions_p001"],
        "edges_p090": len(result["edges"]),
        "lambda": result["lambda"],
        "u_seed": args.u_seed,
        "duckdb_threads": result["threads"],
        "predict_threshold": PREDICT_THRESHOLD,
        "cluster_threshold": PERSON_CLUSTER_THRESHOLD if args.settings == "person" else CLUSTER_THRESHOLD,
        "em_postcode_rule": list(em_rule),
        "load_average_start": load_at_start,
    }
    write_run(out, result["clusters"], run_meta, edges=result["edges"])
    result["linker"].misc.save_model_to_json(str(out / "model.json"), overwrite=True)
    print(
        f"wall time {result['seconds']:.1f} s, peak RSS {result['peak_rss_mib']:.0f} MiB; "
        f"stages {result['stages']}; comparisons {comparisons if comparisons is not None else 'not counted'}; "
        f"{len(result['edges']):,} edges ≥ {run_meta['cluster_threshold']}; λ = {result['lambda']:.3g} → {out}"
    )


if __name__ == "__main__":
    main()
