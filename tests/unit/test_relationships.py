"""The relationship graph on small hand-made frames: every edge type, its weight and evidence, and what is skipped."""

from __future__ import annotations

import pandas as pd

from mos_pipelines.relationships import build_edges


def _contacts() -> pd.DataFrame:
    rows = [
        # customer, first name, account, title, persona, seniority, engaged
        ("c1", "Dana", "domain:acme.com", "VP Marketing", "marketer", "vp", True),
        ("c2", "Sam", "domain:acme.com", "Marketing Manager", "marketer", "manager", True),
        ("c3", "Kim", "domain:acme.com", "Engineering Manager", "engineer", "manager", True),
        ("c4", "Lee", "domain:acme.com", "Data Analyst", "engineer", "individual_contributor", False),
        ("c5", "Ana", "domain:globex.com", "CMO", "marketer", "c_level", False),
        ("c6", "Raj", None, None, None, None, False),
    ]
    frame = pd.DataFrame(
        rows, columns=["customer_id", "first_name", "account_key", "job_title", "persona", "seniority", "is_engaged"]
    )
    frame["company"] = frame["account_key"].str.removeprefix("domain:")
    return frame


def _edges(frame: pd.DataFrame, relationship: str) -> set[tuple[str, str]]:
    chosen = frame[frame["relationship"] == relationship]
    return set(zip(chosen["source_id"], chosen["target_id"], strict=True))


def test_works_at_colleagues_titles_and_buying_group() -> None:
    edges = build_edges(_contacts())
    f = edges.frame
    assert _edges(f, "works_at") == {
        (c, a)
        for c, a in [
            ("c1", "domain:acme.com"),
            ("c2", "domain:acme.com"),
            ("c3", "domain:acme.com"),
            ("c4", "domain:acme.com"),
            ("c5", "domain:globex.com"),
        ]
    }
    assert _edges(f, "colleague") == {
        ("c1", "c2"),
        ("c1", "c3"),
        ("c1", "c4"),
        ("c2", "c3"),
        ("c2", "c4"),
        ("c3", "c4"),
    }
    # the nearest more senior contact of the same function; a CMO alone at her account manages nobody
    assert _edges(f, "reports_to") == {("c2", "c1"), ("c4", "c3")}
    assert _edges(f, "manages") == {("c1", "c2"), ("c3", "c4")}
    # engaged contacts with different personas (c1 and c2 are both marketers; c4 is not engaged)
    assert _edges(f, "same_buying_group") == {("c1", "c3"), ("c2", "c3")}
    assert edges.skipped == {"customers without an account": 1}
    assert f["edge_id"].is_unique and f["weight"].between(0, 1).all() and f["evidence"].str.len().gt(0).all()


def test_large_accounts_get_no_pairs_and_say_so() -> None:
    big = pd.DataFrame(
        {
            "customer_id": [f"c{i:03d}" for i in range(60)],
            "first_name": "X",
            "account_key": "domain:big.com",
            "company": "Big",
            "job_title": None,
            "persona": None,
            "seniority": None,
            "is_engaged": False,
        }
    )
    edges = build_edges(big, max_account_size=50)
    assert set(edges.frame["relationship"]) == {"works_at"}
    assert edges.skipped == {"accounts over 50 contacts (no pairs)": 1}


def test_notes_name_colleagues_managers_and_introductions() -> None:
    notes = pd.DataFrame(
        [
            ("c2", "n1", "Call w/ Sam. Kim from IT also joined. Sam reports to Dana."),
            ("c2", "n2", "Kim again on the call; intro by Lee last month."),
            ("c5", "n3", "Ana mentioned Sam from a conference."),  # Sam is not at Ana's account
        ],
        columns=["customer_id", "note_id", "note_text"],
    )
    f = build_edges(_contacts(), notes=notes).frame
    notes_only = f[f["evidence_source"] == "note"]
    assert _edges(notes_only, "mentioned_with") == {("c2", "c3"), ("c2", "c1"), ("c2", "c4")}
    kim = notes_only[(notes_only["relationship"] == "mentioned_with") & (notes_only["target_id"] == "c3")]
    assert kim["weight"].tolist() == [0.75] and "2 notes" in kim["evidence"].iloc[0]
    assert _edges(notes_only, "reports_to") == {("c2", "c1")}
    assert _edges(notes_only, "manages") == {("c1", "c2")}
    assert _edges(notes_only, "introduced_by") == {("c2", "c4")}
    assert "intro by Lee" in notes_only[notes_only["relationship"] == "introduced_by"]["evidence"].iloc[0]


def test_a_person_who_moved_company_links_to_former_colleagues() -> None:
    contacts = _contacts()
    contacts.loc[contacts["customer_id"] == "c5", "account_key"] = "domain:globex.com"
    employers = pd.DataFrame(
        [
            ("c5", "domain:acme.com", "Acme", "2025-01-01"),  # Ana's older record: she was at Acme
            ("c5", "domain:globex.com", "Globex", "2026-03-01"),
            ("c1", "domain:acme.com", "Acme", "2026-01-01"),
        ],
        columns=["customer_id", "account_key", "company", "seen_at"],
    )
    f = build_edges(contacts, employers=employers).frame
    assert _edges(f, "former_colleague") == {("c1", "c5"), ("c2", "c5"), ("c3", "c5"), ("c4", "c5")}
    assert "Acme" in f[f["relationship"] == "former_colleague"]["evidence"].iloc[0]


def test_empty_and_dirty_inputs_build_an_empty_graph() -> None:
    empty = build_edges(pd.DataFrame(columns=_contacts().columns))
    assert empty.frame.empty and list(empty.frame.columns)[:3] == ["edge_id", "source_id", "source_kind"]
    dirty = _contacts().assign(seniority="unheard_of", persona=None)
    f = build_edges(
        dirty, notes=pd.DataFrame({"customer_id": ["c1", None], "note_id": ["n", "m"], "note_text": [None, "Sam"]})
    ).frame
    assert not set(f["relationship"]) & {"reports_to", "manages", "same_buying_group", "mentioned_with"}


def test_manual_edges_are_kept_as_given_and_unknown_ends_or_types_are_skipped() -> None:
    manual = pd.DataFrame(
        [
            ("c5", "introduced_by", "c1", 0.9, "met at the webinar", "analyst"),
            ("c6", "reports_to", "c5", None, None, "admin"),
            ("c1", "reports_to", "gone", 1.0, None, "analyst"),  # an end that is no customer (erased)
            ("c1", "best_friend", "c2", 1.0, None, "analyst"),  # not a relationship type
        ],
        columns=["from_customer_id", "relationship_type", "to_customer_id", "weight", "evidence", "updated_by"],
    )
    edges = build_edges(_contacts(), manual=manual)
    kept = edges.frame[edges.frame["evidence_source"] == "manual"]
    assert set(zip(kept["source_id"], kept["relationship"], kept["target_id"], kept["weight"], kept["evidence"])) == {
        ("c5", "introduced_by", "c1", 0.9, "met at the webinar"),
        ("c6", "reports_to", "c5", 1.0, "set by admin"),
    }
    assert edges.skipped["manual edges naming no known customer or type"] == 2
