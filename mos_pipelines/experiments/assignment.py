"""Deterministic, hash-based assignment of units to a persistent holdout and to arms.

A unit (a recipient address, lower-cased and trimmed) gets two independent uniform numbers per
experiment from ``md5(salt:experiment:purpose:unit)`` (the first 52 bits / 2^52):

- ``holdout_bucket`` < the experiment's holdout share → the unit is in the holdout, for good: the
  number depends on nothing but the unit and the experiment, so it is the same in every run, and a new
  unit arriving changes no one else's;
- ``arm_bucket`` picks the arm from the cumulative traffic shares of the unit's segment (arms in a
  fixed order). Same shares, same arm; when the bandit moves shares, only units near the moved
  boundaries change arm.

The same hash is available as SQL (``bucket_sql``) so the warehouse can exclude holdout units in a
query; a unit test checks that both give the same numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import pandas as pd

HOLDOUT = "holdout"
ARM = "arm"
BUCKET_BITS = 52
SMALL_INPUT = 50_000  # below this many units, hashing in Python beats starting a DuckDB query
_SCALE = float(2**BUCKET_BITS)


def normalise_unit(address: pd.Series) -> pd.Series:
    """The unit id of an address: trimmed and lower-cased (what activation mails); '' -> missing."""
    unit = address.astype("string").str.strip().str.lower()
    return unit.mask(unit == "")


def bucket(unit_id: str, experiment_id: str, purpose: str, salt: str) -> float:
    """One unit's uniform number in [0, 1) (reference implementation)."""
    digest = hashlib.md5(f"{salt}:{experiment_id}:{purpose}:{unit_id}".encode()).hexdigest()
    return int(digest[: BUCKET_BITS // 4], 16) / _SCALE


def bucket_sql(unit_expr: str, experiment_expr: str, purpose: str, salt: str) -> str:
    """The same number as a DuckDB SQL expression (md5 is standard, so SQL and Python agree)."""
    prefix = f"{salt}:".replace("'", "''")
    return (
        f"(cast('0x' || substr(md5('{prefix}' || {experiment_expr} || ':{purpose}:' || {unit_expr}), 1, "
        f"{BUCKET_BITS // 4}) as bigint) / {_SCALE!r})"
    )


def buckets(
    unit_ids: Sequence[str] | pd.Series, experiment_ids: Sequence[str] | pd.Series | str, purpose: str, salt: str
) -> np.ndarray:
    """Vectorised ``bucket``: hashlib for small inputs, DuckDB's md5 for large ones (about a second for 1M)."""
    units = pd.Series(unit_ids, dtype=object).reset_index(drop=True)
    if isinstance(experiment_ids, str):
        experiments = pd.Series([experiment_ids] * len(units), dtype=object)
    else:
        experiments = pd.Series(experiment_ids, dtype=object).reset_index(drop=True)
    if len(units) <= SMALL_INPUT:
        return np.fromiter(
            (bucket(str(u), str(e), purpose, salt) for u, e in zip(units, experiments)), dtype=float, count=len(units)
        )
    frame = pd.DataFrame({"unit_id": units.astype(str), "experiment_id": experiments.astype(str)})
    con = duckdb.connect()
    try:
        con.register("_units", frame)
        out = con.execute(
            f"select {bucket_sql('unit_id', 'experiment_id', purpose, salt)} as b from _units"
        ).fetchnumpy()
    finally:
        con.close()
    return np.asarray(out["b"], dtype=float)


def arm_index(arm_bucket: np.ndarray, shares: Sequence[float]) -> np.ndarray:
    """Arm (position in ``shares``) of each bucket: the bucket's place in the cumulative shares."""
    cumulative = np.cumsum(np.asarray(shares, dtype=float))
    cumulative[-1] = 1.0  # rounding must not leave a gap at the top
    return np.minimum(np.searchsorted(cumulative, arm_bucket, side="right"), len(cumulative) - 1)


def assign_units(
    units: pd.DataFrame,
    experiment_id: str,
    variants: Sequence[str],
    holdout_variant: str,
    holdout_share: float,
    shares_by_segment: Mapping[str, Sequence[float]],
    salt: str,
) -> pd.DataFrame:
    """Holdout and arm of every unit of one experiment.

    ``units`` has ``unit_id`` and ``segment``; ``shares_by_segment`` maps a segment to the traffic
    shares of ``variants`` (in that order); a segment without an allocation gets equal shares.
    Returns ``unit_id, segment, holdout_bucket, arm_bucket, is_holdout, variant_id`` (the holdout
    variant for holdout units).
    """
    if units.empty:
        return units.assign(
            holdout_bucket=pd.Series(dtype=float),
            arm_bucket=pd.Series(dtype=float),
            is_holdout=pd.Series(dtype=bool),
            variant_id=pd.Series(dtype=object),
        )
    k = len(variants)
    unit_ids = units["unit_id"].astype(str).to_numpy()
    holdout_bucket = buckets(unit_ids, experiment_id, HOLDOUT, salt)
    arm_bucket = buckets(unit_ids, experiment_id, ARM, salt)
    segments = units["segment"].astype(str).to_numpy()
    arm = arm_index(arm_bucket, np.full(k, 1.0 / k))
    for segment, shares in shares_by_segment.items():
        rows = segments == segment
        if rows.any():
            arm[rows] = arm_index(arm_bucket[rows], shares)
    is_holdout = holdout_bucket < holdout_share
    variant_ids = np.asarray(list(variants), dtype=object)[arm]
    return pd.DataFrame(
        {
            "unit_id": unit_ids,
            "segment": segments,
            "holdout_bucket": holdout_bucket,
            "arm_bucket": arm_bucket,
            "is_holdout": is_holdout,
            "variant_id": np.where(is_holdout, holdout_variant, variant_ids),
        }
    )
