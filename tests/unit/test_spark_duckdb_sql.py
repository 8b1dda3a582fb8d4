"""The DuckDB → Spark rewrites of the identity matcher's SQL that sqlglot's dialects do not make (no Spark needed:
the star expansion, which asks Spark, is proven by tests/integration/test_spark_identity.py)."""

from __future__ import annotations

import pytest
import sqlglot

from mos_pipelines.spark.duckdb_sql import rewrite


def spark(sql: str, params: list | None = None) -> str:
    return rewrite(sqlglot.parse_one(sql, read="duckdb"), params).sql(dialect="spark")


def test_hash_keeps_64_bits_and_strlen_counts_bytes():
    assert spark("select hash(a, b), strlen(hash_me) from t") == "SELECT XXHASH64(a, b), OCTET_LENGTH(hash_me) FROM t"


def test_similarities_become_the_udfs_also_nested():
    sql = spark("select jaro_winkler_similarity(lower(damerau_levenshtein(a, b)::varchar), c) from t")
    assert sql == "SELECT MX_JARO_WINKLER_SIMILARITY(LOWER(CAST(MX_DAMERAU_LEVENSHTEIN(a, b) AS STRING)), c) FROM t"


def test_list_length_is_null_of_null_and_string_length_stays():
    sql = spark("select len(list_intersect(list_distinct(string_split(a, ' ')), x)), len(a) from t")
    assert sql.startswith("SELECT ARRAY_SIZE(ARRAY_INTERSECT(ARRAY_DISTINCT(SPLIT(a, ")
    assert sql.endswith(", x)), LENGTH(a) FROM t")


def test_rowid_numbers_the_rows_in_their_order():
    assert spark("select rowid as _rid, * from t") == (
        "SELECT CAST(ROW_NUMBER() OVER (ORDER BY MONOTONICALLY_INCREASING_ID()) - 1 AS BIGINT) AS _rid, * FROM t"
    )


def test_parameters_are_bound_in_order_floats_as_exact_doubles():
    params = [0.1, 3, "x"]
    assert spark("select * from t where p >= ? and n = ? and s = ?", params) == (
        "SELECT * FROM t WHERE p >= CAST('0.1' AS DOUBLE) AND n = 3 AND s = 'x'"
    )
    assert params == []
    with pytest.raises(ValueError, match="not enough parameters"):
        spark("select ? + ?", [1])
