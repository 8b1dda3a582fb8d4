"""Identity evaluation: hand-computed clustered/pairwise metrics, merge diagnostics and the truth CSV loader."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mos_pipelines.identity.evaluation import (
    PairScores,
    TruthFileError,
    evaluate,
    evaluate_clusters,
    evaluate_edges,
    load_truth_csv,
)


def counts(scores: PairScores) -> tuple[int, int, int]:
    return scores.true_positives, scores.predicted_pairs, scores.true_pairs


# Three true entities: A has 3 records, B and C have 2 each → 3 + 1 + 1 = 5 true pairs.
TRUTH = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B", "c1": "C", "c2": "C"}


def test_perfect_prediction_with_different_labels_scores_one():
    # Cluster labels are arbitrary: reusing the truth's labels for other entities must not matter.
    predicted = {"a1": "C", "a2": "C", "a3": "C", "b1": "A", "b2": "A", "c1": "B", "c2": "B"}
    result = evaluate_clusters(predicted, TRUTH)
    assert counts(result.pairs) == (5, 5, 5)
    assert (result.pairs.precision, result.pairs.recall, result.pairs.f1) == (1.0, 1.0, 1.0)
    assert (result.over_merged_clusters, result.under_merged_entities) == (0, 0)
    assert (result.predicted_clusters, result.true_entities, result.records) == (3, 3, 7)
    assert (result.largest_predicted_cluster, result.largest_true_entity) == (3, 3)


def test_chaining_over_merge_is_counted_in_pairs_and_clusters():
    # a3–b1 and b2–c1 edges chained three entities into one cluster of 7: C(7,2) = 21 predicted pairs.
    predicted = {key: "giant" for key in TRUTH}
    result = evaluate_clusters(predicted, TRUTH)
    assert counts(result.pairs) == (5, 21, 5)
    assert result.pairs.precision == pytest.approx(5 / 21)
    assert result.pairs.recall == 1.0
    assert result.pairs.f1 == pytest.approx(10 / 26)
    assert result.largest_predicted_cluster == 7
    assert result.largest_true_entity == 3
    assert result.largest_predicted_cluster_entities == 3
    assert (result.over_merged_clusters, result.over_merged_records) == (1, 7)
    assert (result.under_merged_entities, result.under_merged_records) == (0, 0)
    assert result.predicted_clusters == 1


def test_partial_chain_only_flags_the_mixed_cluster():
    # {a1,a2,a3,b1,b2} chained, {c1,c2} correct: predicted pairs 10 + 1, true positives 3 + 1 + 1.
    predicted = {"a1": 1, "a2": 1, "a3": 1, "b1": 1, "b2": 1, "c1": 2, "c2": 2}
    result = evaluate_clusters(predicted, TRUTH)
    assert counts(result.pairs) == (5, 11, 5)
    assert (result.over_merged_clusters, result.over_merged_records) == (1, 5)
    assert result.largest_predicted_cluster_entities == 2


def test_under_merge_and_singletons():
    truth = {"r1": "A", "r2": "A", "r3": "A", "r4": "A", "r5": "B", "r6": "C"}  # C(4,2) = 6 true pairs
    predicted = {"r1": "x", "r2": "x", "r3": "y", "r4": "z", "r5": "u", "r6": "v"}  # 1 predicted pair
    result = evaluate_clusters(predicted, truth)
    assert counts(result.pairs) == (1, 1, 6)
    assert result.pairs.precision == 1.0
    assert result.pairs.recall == pytest.approx(1 / 6)
    assert result.pairs.f1 == pytest.approx(2 / 7)
    assert (result.under_merged_entities, result.under_merged_records) == (1, 4)
    assert result.over_merged_clusters == 0
    assert (result.predicted_clusters, result.true_entities) == (5, 3)


def test_no_pairs_on_either_side_and_no_predicted_pairs():
    singletons = {"r1": "A", "r2": "B"}
    result = evaluate_clusters({"r1": 1, "r2": 2}, singletons)
    assert (result.pairs.precision, result.pairs.recall, result.pairs.f1) == (1.0, 1.0, 1.0)
    # Everything split while the truth has pairs: nothing wrong is claimed, nothing found.
    result = evaluate_clusters({key: key for key in TRUTH}, TRUTH)
    assert (result.pairs.precision, result.pairs.recall, result.pairs.f1) == (1.0, 0.0, 0.0)
    assert (result.under_merged_entities, result.under_merged_records) == (3, 7)


def test_records_on_one_side_only_are_reported_and_treated_as_singletons():
    truth = {"a1": "A", "a2": "A", "y": "A"}  # y never reached the matcher
    predicted = {"a1": 1, "a2": 1, "x": 1}  # x is not in the truth
    result = evaluate_clusters(predicted, truth)
    # Universe a1, a2, x, y. Predicted pairs: a1a2, a1x, a2x. True pairs: a1a2, a1y, a2y. Shared: a1a2.
    assert counts(result.pairs) == (1, 3, 3)
    assert result.records == 4
    assert (result.only_in_predicted, result.only_in_truth) == (1, 1)
    assert result.only_in_predicted_examples == ("x",)
    assert result.only_in_truth_examples == ("y",)
    assert (result.over_merged_clusters, result.under_merged_entities) == (1, 1)
    assert (result.predicted_clusters, result.true_entities) == (2, 2)


def test_cross_source_linkage_metrics_for_a_two_file_link():
    # A1–B1 is the true link; A2 (another entity) got chained in through B1.
    truth = {"A1": "E1", "B1": "E1", "A2": "E2", "B2": "E2", "A3": "E3"}
    predicted = {"A1": "c", "B1": "c", "A2": "c", "B2": "d", "A3": "e"}
    sources = {"A1": "A", "A2": "A", "A3": "A", "B1": "B", "B2": "B"}
    result = evaluate_clusters(predicted, truth, sources=sources)
    assert counts(result.pairs) == (1, 3, 2)  # within cluster c: A1B1 (true), A1A2, A2B1
    assert counts(result.linkage_pairs) == (1, 2, 2)  # A1A2 is same-source, so not a linkage pair
    assert result.linkage_pairs.precision == 0.5


def test_multiindex_keys_with_source_level():
    index = pd.MultiIndex.from_tuples(
        [("crm", "1"), ("web", "1"), ("crm", "2"), ("web", "2")], names=["source", "source_record_id"]
    )
    truth = pd.Series(["E1", "E1", "E2", "E2"], index=index)
    predicted = {("crm", "1"): "p", ("web", "1"): "p", ("crm", "2"): "p", ("web", "2"): "q", ("web", "9"): "q"}
    result = evaluate_clusters(predicted, truth, sources="source")
    # Cluster p: crm1-web1 (true), crm1-crm2, web1-crm2. Cluster q: web2-web9 (web9 not in truth).
    assert counts(result.pairs) == (1, 4, 2)
    assert counts(result.linkage_pairs) == (1, 2, 2)  # cross-source predicted pairs: crm1-web1, web1-crm2
    assert result.only_in_predicted_examples == (("web", "9"),)
    with pytest.raises(ValueError, match="no index level"):
        evaluate_clusters(predicted, truth, sources="channel")


def test_edges_pairwise_metrics():
    edges = [
        ("a1", "a2"),
        ("a2", "a1"),  # the same pair twice, once reversed: counted once, true
        ("a3", "b1"),  # wrong
        ("b1", "b2"),  # true
        ("c1", "c1"),  # self pair: dropped
        ("z9", "c2"),  # z9 is not in the truth: false positive
    ]
    result = evaluate_edges(edges, TRUTH)
    assert counts(result.pairs) == (2, 4, 5)  # recall counts a1a3, a2a3, c1c2 as misses
    assert (result.edges, result.duplicate_edges, result.self_edges, result.edges_with_unknown_records) == (4, 1, 1, 1)
    assert result.pairs.precision == 0.5
    assert result.pairs.recall == pytest.approx(2 / 5)


def test_edges_as_dataframe_with_linkage():
    truth = {"A1": "E1", "B1": "E1", "A2": "E2", "B2": "E2"}
    frame = pd.DataFrame({"l": ["A1", "A1", "A2"], "r": ["B1", "A2", "B1"], "match_probability": [1, 1, 1]})
    result = evaluate_edges(frame, truth, sources={"A1": "A", "A2": "A", "B1": "B", "B2": "B"})
    assert counts(result.pairs) == (1, 3, 2)
    assert counts(result.linkage_pairs) == (1, 2, 2)


def test_matches_brute_force_pair_enumeration():
    rng = np.random.default_rng(20260101)
    for _ in range(150):
        keys = [f"k{i}" for i in range(int(rng.integers(2, 20)))]
        truth = {k: int(rng.integers(0, 4)) for k in keys if rng.random() < 0.9} or {keys[0]: 0}
        predicted = {k: int(rng.integers(0, 4)) for k in keys if rng.random() < 0.9}
        universe = sorted(set(truth) | set(predicted))

        def same(side: dict, a: str, b: str) -> bool:
            return a in side and b in side and side[a] == side[b]

        pred_pairs = {p for p in combinations(universe, 2) if same(predicted, *p)}
        true_pairs = {p for p in combinations(universe, 2) if same(truth, *p)}
        result = evaluate_clusters(predicted, truth)
        assert counts(result.pairs) == (len(pred_pairs & true_pairs), len(pred_pairs), len(true_pairs))

        edges = [(universe[i], universe[j]) for i, j in rng.integers(0, len(universe), (8, 2))]
        distinct = {tuple(sorted(e)) for e in edges if e[0] != e[1]}
        edge_result = evaluate_edges(edges, truth)
        assert counts(edge_result.pairs) == (
            sum(same(truth, *e) for e in distinct),
            len(distinct),
            len({p for p in combinations(sorted(truth), 2) if same(truth, *p)}),
        )


def test_bad_assignments_are_rejected():
    with pytest.raises(ValueError, match="duplicated record key"):
        evaluate_clusters(pd.Series([1, 2], index=["r1", "r1"]), {"r1": "A"})
    with pytest.raises(ValueError, match="no id"):
        evaluate_clusters(pd.Series([1, None], index=["r1", "r2"], dtype=object), {"r1": "A"})


def test_report_is_json_and_markdown():
    predicted = {key: "giant" for key in TRUTH}
    report = evaluate(predicted, TRUTH, edges=[("a1", "a2"), ("a3", "b1")], extra={"tool": "test"})
    flat = report.as_dict()
    json.dumps(flat)
    assert flat["tool"] == "test"
    assert flat["clustered_precision"] == pytest.approx(5 / 21)
    assert flat["clustered_over_merged_clusters"] == 1
    assert flat["pairwise_true_positives"] == 1
    text = report.to_markdown()
    assert "| clustered | 0.2381 | 1.0000 | 0.3846 | 5 | 21 | 5 |" in text
    assert "| pairwise (edges) | 0.5000 | 0.2000 | 0.2857 | 1 | 2 | 5 |" in text
    assert "| largest predicted cluster / largest true entity | 7 / 3" in text


# ------------------------------------------------------------------------------------------ truth CSV


def write(tmp_path: Path, text: str, name: str = "truth.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_truth_csv_loads_into_source_keyed_series(tmp_path: Path):
    path = write(
        tmp_path, "source,source_record_id,true_entity_id,extra\ncrm,1,E1,x\nweb, 7 ,E1,\n\ncrm,2,E2,y\ncrm,1,E1,z\n"
    )  # a repeat with the same entity is fine
    truth = load_truth_csv(path)
    assert truth.to_dict() == {("crm", "1"): "E1", ("web", "7"): "E1", ("crm", "2"): "E2"}
    assert list(truth.index.names) == ["source", "source_record_id"]
    result = evaluate_clusters({("crm", "1"): 1, ("web", "7"): 1, ("crm", "2"): 2}, truth, sources="source")
    assert counts(result.pairs) == (1, 1, 1)
    assert counts(result.linkage_pairs) == (1, 1, 1)


def test_truth_csv_missing_column_names_file_and_column(tmp_path: Path):
    path = write(tmp_path, "source,record_id,true_entity_id\ncrm,1,E1\n")
    with pytest.raises(TruthFileError, match=r"truth\.csv: missing column 'source_record_id'"):
        load_truth_csv(path)


def test_truth_csv_empty_id_names_line_and_field(tmp_path: Path):
    path = write(tmp_path, "source,source_record_id,true_entity_id\ncrm,1,E1\ncrm,2,E2\n,3,E3\ncrm, ,E4\n")
    with pytest.raises(TruthFileError, match=r"truth\.csv: line 4: field 'source' is empty"):
        load_truth_csv(path)
    path = write(tmp_path, "source,source_record_id,true_entity_id\ncrm,1,E1\ncrm,2\n", "short.csv")
    with pytest.raises(TruthFileError, match=r"short\.csv: line 3: field 'true_entity_id' is empty"):
        load_truth_csv(path)


def test_truth_csv_conflicting_duplicate_names_both_lines(tmp_path: Path):
    path = write(tmp_path, "source,source_record_id,true_entity_id\ncrm,1,E1\ncrm,2,E2\ncrm,1,E9\n")
    with pytest.raises(TruthFileError) as raised:
        load_truth_csv(path)
    message = str(raised.value)
    assert "truth.csv: line 4: field 'true_entity_id'" in message
    assert "'E9'" in message and "'E1' on line 2" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", "the file is empty"), ("source,source_record_id,true_entity_id\n", "no records")],
)
def test_truth_csv_empty_files(tmp_path: Path, text: str, expected: str):
    with pytest.raises(TruthFileError, match=expected):
        load_truth_csv(write(tmp_path, text))


def test_truth_csv_missing_file(tmp_path: Path):
    with pytest.raises(TruthFileError, match="not found"):
        load_truth_csv(tmp_path / "absent.csv")


def test_truth_by_node_key_is_read_again_when_the_file_changes(tmp_path: Path):
    from mos_pipelines.identity.truth_eval import truth_by_node_key

    path = write(tmp_path, "source,source_record_id,true_entity_id\nhubspot,1,E1\norders,o9,E1\n")
    first = truth_by_node_key(path)
    assert first.to_dict() == {"crm:hubspot:1": "E1", "order:o9": "E1"}
    first["crm:hubspot:1"] = "changed by a caller"  # a caller's copy: the next caller still reads the file's values
    assert truth_by_node_key(path)["crm:hubspot:1"] == "E1"
    write(tmp_path, "source,source_record_id,true_entity_id\nhubspot,1,E2\norders,o9,E1\nsegment_user_id,u1,E2\n")
    assert truth_by_node_key(path).to_dict() == {"crm:hubspot:1": "E2", "order:o9": "E1", "user:u1": "E2"}
    with pytest.raises(TruthFileError, match="not found"):
        truth_by_node_key(tmp_path / "absent.csv")
