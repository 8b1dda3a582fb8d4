"""A customer's relationship graph in the web app: neighbours read from either side of an edge, ranked and capped,
a deterministic radial layout, the SVG's links and titles, and names and note quotes masked for a reader without
see_pii — the functions on hand-made edges, then /customers/{id} over a small real warehouse whose
customer_relationships table is written by the project's own build_edges (and a 503 while a run holds it)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mos_pipelines.relationships import build_edges
from mos_pipelines.settings import Settings
from mos_pipelines.web import graph
from mos_pipelines.web.app import WebSettings, create_app

TOKENS = {
    "MOS_TOKEN_PERFORMANCE_MARKETER": "pm-token-g",
    "MOS_TOKEN_LIFECYCLE_MARKETER": "lm-token-g",
    "MOS_TOKEN_ANALYST": "an-token-g",
    "MOS_TOKEN_ADMIN": "ad-token-g",
}


def edge(source, relationship, target, weight=1.0, evidence="", evidence_source="golden_record", note_id=None, **kw):
    return {
        "source_id": source,
        "source_kind": "customer",
        "relationship": relationship,
        "target_id": target,
        "target_kind": kw.get("target_kind", "customer"),
        "weight": weight,
        "evidence": evidence,
        "evidence_source": evidence_source,
        "note_id": note_id,
    }


EDGES = [
    edge("ana", "works_at", "domain:acme.io", evidence="works at Acme", target_kind="account"),
    edge("ana", "colleague", "ben", evidence="both at Acme"),
    edge("ana", "reports_to", "ben", 0.9, "reports to Ben since May", "note", "n1"),
    edge("ben", "manages", "ana", 0.9, "reports to Ben since May", "note", "n1"),  # the mirror: one tie
    edge("cal", "colleague", "dee", evidence="both at Acme"),  # does not touch ana
    edge("cal", "mentioned_with", "ana", 0.5, "Cal met Ana at <the> expo", "note", "n2"),
    edge("ana", "former_colleague", "eve", 0.5, "a CRM record names Initech; now at Acme", "crm_history"),
    edge("eve", "introduced_by", "ana", 1.0, "Eve Stone met Ana Lima at the fair", "manual"),  # set through the API
]
NAMES = {"ana": "Ana Lima", "ben": "Ben Okafor", "cal": "Cal Diaz"}  # eve has no name


def test_neighbours_are_read_from_either_side_merged_and_ranked_by_strength():
    hood = graph.neighbourhood("ana", EDGES, NAMES)
    assert [(n.id, n.kind, n.label, n.strength) for n in hood.shown] == [
        ("ben", "customer", "Ben Okafor", 1.9),
        ("eve", "customer", "eve", 1.5),  # no name: its id
        ("domain:acme.io", "account", "Acme", 1.0),  # the company from the works_at evidence
        ("cal", "customer", "Cal Diaz", 0.5),
    ]
    ben = hood.shown[0]
    assert [(t.label, t.weight) for t in ben.ties] == [("colleague", 1.0), ("reports to", 0.9)]
    assert [t.label for t in hood.shown[1].ties] == ["introduced", "former colleague"]  # Eve was introduced by Ana
    assert [t.label for t in hood.shown[3].ties] == ["mentioned by"]  # Cal's note names Ana
    assert hood.shown[0].href == "/customers/ben" and hood.shown[2].href is None
    assert (hood.total, hood.more) == (4, 0)
    from_ben = graph.neighbourhood("ben", EDGES, NAMES)
    assert [t.label for t in from_ben.shown[0].ties] == ["colleague", "manages"]


def test_the_strongest_are_kept_and_the_rest_counted():
    many = [edge("hub", "colleague", f"p{i:02d}", weight=1 + i / 100) for i in range(20)]
    hood = graph.neighbourhood("hub", many, {}, limit=12)
    assert [n.id for n in hood.shown] == [f"p{i:02d}" for i in range(19, 7, -1)]
    assert (hood.total, hood.more) == (20, 8)
    assert 'class="more">and 8 more</text>' in graph.svg(hood)


def test_radial_layout_is_deterministic_evenly_spaced_and_starts_at_the_top():
    centre, points = graph.radial_layout(6, 640, 440, margin=70)
    assert centre == (320, 220)
    assert points == graph.radial_layout(6, 640, 440, margin=70)[1]
    assert points[0] == (320.0, 70.0)  # straight up
    assert points[1][0] > 320 and points[3] == (320.0, 370.0)  # clockwise; the fourth of six straight down
    radii = {round(math.dist(centre, p), 0) for p in points}
    assert radii == {150.0}
    gaps = {round(math.dist(points[i], points[(i + 1) % 6]), 0) for i in range(6)}
    assert len(gaps) == 1
    assert graph.radial_layout(0)[1] == []


def test_svg_links_customers_titles_every_edge_and_escapes_text():
    hood = graph.neighbourhood("ana", EDGES, NAMES)
    drawn = graph.svg(hood)
    assert drawn.startswith("<svg") and "<script" not in drawn
    assert 'role="group"' in drawn and 'aria-labelledby="graph-title graph-desc"' in drawn
    assert drawn.count("<a href=") == 3  # ben, cal, eve; the account has no page
    assert '<a href="/customers/ben">' in drawn and 'href="/customers/domain' not in drawn
    assert "Cal met Ana at &lt;the&gt; expo" in drawn and "<the>" not in drawn
    assert drawn.count('<g class="edge"') == 4
    assert "Eve Stone met Ana Lima" in drawn  # a reader with see_pii sees the evidence on hover


def test_without_see_pii_names_become_initials_and_free_text_is_hidden():
    hood = graph.masked(graph.neighbourhood("ana", EDGES, NAMES), see_pii=False)
    assert hood.centre_label == "A. L."
    assert [n.label for n in hood.shown] == ["B. O.", "eve", "Acme", "C. D."]
    evidence = [t.evidence for n in hood.shown for t in n.ties]
    assert graph.NOTE_HIDDEN in evidence and graph.FREE_TEXT["manual"] in evidence
    assert not any("Ben since" in e or "Cal met" in e or "Stone" in e for e in evidence)
    assert "a CRM record names Initech; now at Acme" in evidence  # companies stay
    drawn = graph.svg(hood)
    assert not any(word in drawn for word in ("Okafor", "Lima", "Cal met", "Stone"))
    assert graph.masked(graph.neighbourhood("ana", EDGES, NAMES), see_pii=True).centre_label == "Ana Lima"


# -- the page over a small real warehouse ------------------------------------------------------------------------


@pytest.fixture()
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """marts.dim_customers and marts.customer_relationships (build_edges over three people at Acme, one of whose
    notes says who she reports to, and a fourth without an account)."""
    contacts = pd.DataFrame(
        [
            ("c_ana", "Ana", "Lima", "acme", "Acme", "Marketing Manager", "marketer", "manager", True),
            ("c_ben", "Ben", "Okafor", "acme", "Acme", "VP Marketing", "marketer", "vp", True),
            ("c_cal", "Cal", "Diaz", "acme", "Acme", "Engineer", "engineer", "individual", False),
            ("c_zoe", "Zoe", "Park", None, None, None, None, None, False),
        ],
        columns=[
            "customer_id",
            "first_name",
            "last_name",
            "account_key",
            "company",
            "job_title",
            "persona",
            "seniority",
            "is_engaged",
        ],
    )
    notes = pd.DataFrame([("c_ana", "n1", "Call went well. She reports to Ben, who signs off budgets.")])
    notes.columns = ["customer_id", "note_id", "note_text"]
    edges = build_edges(contacts, None, notes).frame  # noqa: F841 (read by the SQL below)
    settings = Settings(mos_home=tmp_path / "home")
    settings.mos_home.mkdir()
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.dim_customers as select customer_id, first_name, last_name, company, job_title "
            "from contacts"
        )
        con.execute("create table marts.customer_relationships as select * from edges")
    for key, value in TOKENS.items():
        monkeypatch.setenv(key, value)
    app = create_app(settings, WebSettings(secret=b"g" * 32, wait_seconds=0.5))
    test_client = TestClient(app)
    test_client.warehouse = settings.warehouse_path  # type: ignore[attr-defined]
    return test_client


def test_the_customer_page_draws_the_graph_and_masks_names_for_a_marketer(client: TestClient):
    analyst = client.get("/customers/c_ana", headers={"authorization": "Bearer an-token-g"})
    assert analyst.status_code == 200
    found = analyst.json()  # a Bearer client gets JSON
    assert found["name"] == "Ana Lima"
    assert [n["name"] for n in found["neighbours"]] == ["Ben Okafor", "Acme", "Cal Diaz"]
    ben = found["neighbours"][0]
    assert {t["label"] for t in ben["ties"]} >= {"colleague", "reports to", "mentioned with"}
    assert any("reports to Ben" in t["evidence"] for t in ben["ties"])

    marketer = client.get("/customers/c_ana", headers={"authorization": "Bearer pm-token-g"}).json()
    assert marketer["name"] == "A. L."
    assert [n["name"] for n in marketer["neighbours"]] == ["B. O.", "Acme", "C. D."]
    assert all("Ben" not in t["evidence"] for n in marketer["neighbours"] for t in n["ties"])


def test_the_page_as_html_a_customer_without_edges_and_an_unknown_one(client: TestClient):
    client.post("/login", data={"token": "pm-token-g", "next": "/"}, follow_redirects=False)
    page = client.get("/customers/c_ana")
    assert page.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="graph"' in page.text
    assert 'href="/customers/c_ben"' in page.text and "Okafor" not in page.text and "Lima" not in page.text
    alone = client.get("/customers/c_zoe")
    assert alone.status_code == 200 and 'id="no-edges"' in alone.text and "<svg" not in alone.text
    assert client.get("/customers/c_nobody").status_code == 404
    with duckdb.connect(str(client.warehouse)) as con:  # type: ignore[attr-defined]
        con.execute("drop table marts.customer_relationships")
    assert 'id="no-graph"' in client.get("/customers/c_ana").text


def test_a_warehouse_held_by_a_run_gives_a_503_on_the_customer_page(client: TestClient):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(30)",
            str(client.warehouse),  # type: ignore[attr-defined]
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        page = client.get("/customers/c_ana", headers={"authorization": "Bearer pm-token-g"})
        assert page.status_code == 503 and page.headers["retry-after"] == "60"
    finally:
        holder.kill()
        holder.wait()
    assert client.get("/customers/c_ana", headers={"authorization": "Bearer pm-token-g"}).status_code == 200
