"""DuckDB's string similarities that Spark SQL lacks, as vectorised pandas UDFs with DuckDB's exact values.

DuckDB 2's ``jaro_winkler_similarity`` and ``damerau_levenshtein`` work on characters (not bytes) and equal
RapidFuzz's ``JaroWinkler.similarity`` (prefix weight 0.1) and unrestricted ``DamerauLevenshtein.distance``, except
that DuckDB scores two empty strings 0.0 where RapidFuzz scores them 1.0. Each batch is one ``process.cpdist`` call
(element-wise, in C++). Spark's own ``levenshtein`` counts characters as DuckDB's does, so it needs none.

Spark evaluates a Python UDF for every row of its input, also where a ``CASE`` branch would not need it (DuckDB
skips those): the UDFs take nulls and return null for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# DuckDB function name -> the name the UDF is registered under on Spark
UDF_NAMES = {"jaro_winkler_similarity": "mx_jaro_winkler_similarity", "damerau_levenshtein": "mx_damerau_levenshtein"}


def _pairs(left: pd.Series, right: pd.Series) -> tuple[np.ndarray, list[str], list[str]]:
    """Where both sides have a value, and those values."""
    valid = (left.notna() & right.notna()).to_numpy()
    return valid, left[valid].astype(str).tolist(), right[valid].astype(str).tolist()


def jaro_winkler_similarity(left: pd.Series, right: pd.Series) -> pd.Series:
    """DuckDB's ``jaro_winkler_similarity`` per row (null where either side is null)."""
    from rapidfuzz import process
    from rapidfuzz.distance import JaroWinkler

    valid, a, b = _pairs(left, right)
    out = np.full(len(left), np.nan)
    if a:
        scores = process.cpdist(a, b, scorer=JaroWinkler.similarity, dtype=np.float64, workers=1)
        empty = np.array([not x and not y for x, y in zip(a, b)])
        out[valid] = np.where(empty, 0.0, scores)
    return pd.Series(out)


def damerau_levenshtein(left: pd.Series, right: pd.Series) -> pd.Series:
    """DuckDB's ``damerau_levenshtein`` per row (null where either side is null)."""
    from rapidfuzz import process
    from rapidfuzz.distance import DamerauLevenshtein

    valid, a, b = _pairs(left, right)
    out = pd.array([None] * len(left), dtype="Int64")
    if a:
        out[valid] = process.cpdist(a, b, scorer=DamerauLevenshtein.distance, dtype=np.int64, workers=1)
    return pd.Series(out)


def register_similarities(spark: SparkSession) -> None:
    """Register the UDFs under ``UDF_NAMES`` in ``spark`` (idempotent)."""
    from pyspark.sql.functions import pandas_udf

    spark.udf.register(UDF_NAMES["jaro_winkler_similarity"], pandas_udf(jaro_winkler_similarity, "double"))
    spark.udf.register(UDF_NAMES["damerau_levenshtein"], pandas_udf(damerau_levenshtein, "bigint"))
