"""The matching engine on data with known duplicates: EM without labels, scores, junk guards."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
