"""The matching engine on data with known duplicates: EM without labels, scores, junk guards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mos_pipelines.identity.clustering import ClusterSettings
from mos_pipelines.identity.comparisons import exact, jaro_winkler, levenshtein
from mos_pipelines.identity.crm_matching import drop_blocked_values
from mos_pipelines.identity.evaluation import evaluate_clusters
from mos_pipelines.identity.matching import MatchSettings
from mos_pipelines.identity.resolve import resolve

SYLLABLES = ["an", "be", "ca", "do", "el", "fa", "gu", "hi", "io", "ka", "lo", "mi", "no", "pe", "ra", "si", "tu", "va"]

SETTINGS = MatchSettings(
    comparisons=(
        jaro_winkler("first", (0.92, 0.8), tf=True),
        jaro_winkler("last", (0.92, 0.8), tf=True),
        levenshtein("dob", (1,)),
        exact("city", tf=True),
        levenshtein("email", (2,)),
    ),
    blocking_rules=(("first", "last"), ("dob",), ("email",), ("last", "city")),
    u_sample_pairs=50_000,
)


def typo(rng: np.random.Generator, text: str) -> str:
    i = int(rng.integers(0, len(text)))
    return text[:i] + text[i + 1 :] if len(text) > 3 else text


def world(n_people: int = 600, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def name(parts: int) -> str:
        return "".join(SYLLABLES[i] for i in rng.integers(0, len(SYLLABLES), parts))

    people = []
    for p in range(n_people):
        first, last = name(2), name(3)  # 324 first names, 5,832 last names
        dob = f"19{rng.integers(50, 99)}{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}"
        people.append((f"P{p}", first, last, dob, f"city{rng.integers(40)}", f"{name(4)}@mail.com"))
    rows = []
    for pid, first, last, dob, city, email in people:
        for copy in range(int(rng.integers(1, 4))):
            f, l_, e = first, last, email
            if copy and rng.random() < 0.5:
                f = typo(rng, f)
            if copy and rng.random() < 0.3:
                e = None
            rows.append(
                {
                    "record_id": f"{pid}-{copy}",
                    "entity": pid,
                    "first": f,
                    "last": l_,
                    "dob": dob,
                    "city": city,
                    "email": e,
                }
            )
    return pd.DataFrame(rows)


def test_unsupervised_matching_recovers_the_duplicates():
    records = world()
    result = resolve(records.drop(columns="entity"), "record_id", SETTINGS, ClusterSettings())
    scores = evaluate_clusters(
        result.clusters.set_index("record_id")["cluster_id"], records.set_index("record_id")["entity"]
    )
    assert result.model.converged
    assert scores.pairs.precision > 0.97 and scores.pairs.recall > 0.95
    assert 0 < result.model.lam < 0.01  # prior over all pairs, not over blocked ones


def test_records_read_from_a_table_by_name_resolve_as_the_same_frame():
    """`resolve` given the name of a table the connection holds (how a Spark build's records stay on Spark) gives
    the clusters, links and model of the same rows given as a frame, whatever the table's row order."""
    import duckdb

    records = world(300, seed=5).drop(columns="entity")
    expected = resolve(records, "record_id", SETTINGS, ClusterSettings())
    con = duckdb.connect()
    con.register("shuffled", records.sample(frac=1.0, random_state=1))
    con.execute("create table crm_records as select * from shuffled")
    result = resolve("crm_records", "record_id", SETTINGS, ClusterSettings(), con=con)
    assert result.clusters.equals(expected.clusters)
    pd.testing.assert_frame_equal(result.links, expected.links)
    # the same fit up to the last bits: DuckDB's parallel sums add in no fixed order (CI saw lam differ at 1e-18)
    assert result.model.lam == pytest.approx(expected.model.lam, rel=1e-12, abs=0)
    assert result.model.m.keys() == expected.model.m.keys()
    for name, levels in expected.model.m.items():
        assert result.model.m[name] == pytest.approx(levels, rel=1e-12, abs=0)
    assert expected.clusters["cluster_id"].nunique() < len(records)  # duplicates were found
    assert con.execute("select count(*) from crm_records").fetchone() == (len(records),)  # the input left as it was


def test_a_shared_junk_email_does_not_merge_people_once_blocked():
    records = world(200, seed=9)
    junk = records.groupby("entity").head(1).sample(40, random_state=1).index
    records.loc[junk, "email"] = "test@test.com"
    frame = records.rename(columns={"email": "email_match_key"}).assign(phone_e164=None)
    cleaned = drop_blocked_values(frame, pd.DataFrame({"identifier_type": ["email"], "value": ["test@test.com"]}))
    assert cleaned["email_match_key"].eq("test@test.com").sum() == 0
    settings = MatchSettings(
        comparisons=SETTINGS.comparisons[:4] + (levenshtein("email_match_key", (2,)),),
        blocking_rules=(("first", "last"), ("dob",), ("email_match_key",), ("last", "city")),
        u_sample_pairs=20_000,
    )
    result = resolve(cleaned.drop(columns=["entity", "phone_e164"]), "record_id", settings, ClusterSettings())
    scores = evaluate_clusters(
        result.clusters.set_index("record_id")["cluster_id"], records.set_index("record_id")["entity"]
    )
    assert scores.over_merged_clusters <= 2
    assert scores.largest_predicted_cluster <= 2 * scores.largest_true_entity


def test_a_single_crm_record_is_its_own_cluster():
    from mos_pipelines.identity.crm_matching import match_crm_contacts

    record = pd.DataFrame(
        [
            {
                "contact_record_key": "hubspot:1",
                "first_name_norm": "ana",
                "last_name_norm": "silva",
                "email_match_key": "ana@x.com",
                "phone_e164": None,
                "postcode_norm": None,
                "company_norm": None,
                "birth_date": None,
            }
        ]
    )
    matched, run = match_crm_contacts(record, pd.DataFrame(columns=["identifier_type", "value"]), ClusterSettings())
    assert run.resolution is None and run.skip_reason == "fewer than two records"
    assert matched[["contact_record_key", "match_cluster_key", "cluster_size"]].to_dict("records") == [
        {"contact_record_key": "hubspot:1", "match_cluster_key": "hubspot:1", "cluster_size": 1}
    ]


def test_a_blocking_key_shared_by_more_records_than_the_cap_pairs_none_of_them():
    import duckdb

    from mos_pipelines.identity.matching import block, register_records

    common = [{"record_id": f"c{i}", "first": "anna", "last": "smith", "dob": f"19{50 + i}0101"} for i in range(31)]
    rare = [{"record_id": f"r{i}", "first": "zoe", "last": "quill", "dob": "19990101"} for i in range(3)]
    con = duckdb.connect()
    register_records(con, pd.DataFrame(common + rare), "record_id")
    settings = MatchSettings(
        comparisons=SETTINGS.comparisons[:2], blocking_rules=(("first", "last"), ("dob",)), max_block_size=30
    )
    block(con, settings)
    pairs = con.execute(
        "select l.record_id, r.record_id, rules from _mx_pairs p "
        "join _mx_records l on l._rid = p.id_l join _mx_records r on r._rid = p.id_r order by 1, 2"
    ).fetchall()
    # 31 "anna smith" exceed the cap of 30: the name pairs nobody; the 3 "zoe quill" pair on both rules
    assert [(a, b) for a, b, _ in pairs] == [("r0", "r1"), ("r0", "r2"), ("r1", "r2")]
    assert {rules for *_, rules in pairs} == {0b11}
    uncapped = MatchSettings(comparisons=settings.comparisons, blocking_rules=settings.blocking_rules)
    assert block(con, uncapped) == 3 + 31 * 30 // 2


def _pairs(con) -> set[tuple[str, str]]:
    return set(
        con.execute(
            "select l.record_id, r.record_id from _mx_pairs p "
            "join _mx_records l on l._rid = p.id_l join _mx_records r on r._rid = p.id_r"
        ).fetchall()
    )


def test_a_weak_rule_pairs_only_records_that_do_not_both_have_a_strong_identifier():
    import itertools

    import duckdb

    from mos_pipelines.identity.matching import block, register_records

    # one surname in one city: records with an email only, a phone only, both, or neither
    fills = {"e1": ("a@x", None), "e2": ("b@x", None), "p1": (None, "1"), "b1": ("c@x", "2"), "n1": (None, None)}
    big = [{"record_id": k, "last": "smith", "city": "york", "email": e, "phone": p} for k, (e, p) in fills.items()]
    small = [
        {"record_id": "s1", "last": "quill", "city": "york", "email": "q@x", "phone": None},
        {"record_id": "s2", "last": "quill", "city": "york", "email": "r@x", "phone": None},
    ]
    con = duckdb.connect()
    register_records(con, pd.DataFrame(big + small), "record_id")
    rule = ("last", "city")
    comparisons = SETTINGS.comparisons[:2]

    def expected(over: int) -> set[tuple[str, str]]:
        out = set()
        for block_records in (big, small):
            for a, b in itertools.combinations(sorted(block_records, key=lambda r: r["record_id"]), 2):
                both = any(a[c] is not None and b[c] is not None for c in ("email", "phone"))
                if len(block_records) <= over or not both:
                    out.add((a["record_id"], b["record_id"]))
        return out

    unconditioned = MatchSettings(comparisons=comparisons, blocking_rules=(rule,))
    assert block(con, unconditioned) == 10 + 1
    for over in (0, 2, 5):
        settings = MatchSettings(
            comparisons=comparisons,
            blocking_rules=(rule,),
            max_block_size=30,
            rule_unless_both_have=((rule, (("email", "phone"), over)),),
        )
        block(con, settings)
        assert _pairs(con) == expected(over), over
    # in every block: the record with neither pairs everyone, email-only pairs phone-only, nothing else
    assert expected(0) == {("b1", "n1"), ("e1", "n1"), ("e2", "n1"), ("n1", "p1"), ("e1", "p1"), ("e2", "p1")}
    # over 2: the two quills (a block of 2) pair though both have an email; the block of 5 is thinned
    assert expected(2) == expected(0) | {("s1", "s2")}
    assert expected(5) == {tuple(sorted(p)) for p in itertools.combinations(fills, 2)} | {("s1", "s2")}


def test_a_session_on_a_weak_rule_leaves_the_identifiers_it_never_sees_to_other_sessions():
    import duckdb

    from mos_pipelines.identity.comparisons import exact
    from mos_pipelines.identity.matching import _session, block, compare_pairs, register_records

    records = pd.DataFrame(
        {
            "record_id": [f"r{i}" for i in range(8)],
            "last": ["smith"] * 4 + ["jones"] * 4,
            "email": ["a@x", None, "b@x", None, "c@x", None, None, "c@x"],
        }
    )
    con = duckdb.connect()
    register_records(con, records, "record_id")
    rule = ("last",)
    settings = MatchSettings(
        comparisons=(exact("last"), exact("email")),
        blocking_rules=(rule,),
        rule_unless_both_have=((rule, (("email",), 0)),),
    )
    block(con, settings)
    compare_pairs(con, settings, "_mx_pairs", "_mx_compared")
    session = _session(con, settings, rule, {"last": {0: 0.9, 1: 0.1}, "email": {0: 0.99, 1: 0.01}})
    # every pair the rule makes lacks an email on one side: email is not estimated from it
    assert session["held_out"] == ["last"] and session["no_evidence"] == ["email"] and session["m"] == {}
