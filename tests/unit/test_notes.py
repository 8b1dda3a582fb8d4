"""Sales notes: the simulator's note writer (determinism, variety) and the offline extractor (hand-written notes,
negation, change of mind, amounts, relative dates, reply chains) scored against the writer's truth."""

from __future__ import annotations

import datetime
import json
import random
from pathlib import Path

import pandas as pd
import pytest

from mos_pipelines.notes import ATTRIBUTES, Attribute, extract, score
from mos_pipelines.notes.scoring import predicted_values
from mos_pipelines.simulation import WorldConfig, generate_world
from mos_pipelines.simulation.note_text import generate_notes

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
WED = datetime.datetime(2026, 6, 10, 15, 0, tzinfo=datetime.UTC)  # a Wednesday


@pytest.fixture(scope="module")
def notes() -> list[dict]:
    return generate_notes(11, 600, START)


def _one(attrs: list[Attribute], name: str) -> Attribute:
    found = [a for a in attrs if a.name == name]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def test_same_seed_same_notes_other_seed_other_notes(notes: list[dict]) -> None:
    assert generate_notes(11, 600, START) == notes
    other = generate_notes(12, 600, START)
    assert sum(a["text"] == b["text"] for a, b in zip(notes, other)) < 10


def test_notes_vary_like_notes(notes: list[dict]) -> None:
    n = len(notes)
    features = [set((r["features"] or "").split(";")) for r in notes]

    def share(kind: str) -> float:
        return sum(kind in f for f in features) / n

    assert share("negation") > 0.10
    assert share("change_of_mind") > 0.05
    assert share("relative_date") > 0.20
    assert share("amount_words") > 0.03
    assert share("reply_chain") > 0.08
    assert share("several_people") > 0.15
    for style in ("lowercase", "bullets", "run_on"):
        assert share(style) > 0.04, style
    assert len({r["text"] for r in notes}) == n
    assert any("\n> " in r["text"] for r in notes)
    # every fact is optional: no attribute is in every note, and each is in some
    for column in ("product_interest", "budget_amount", "timeline_start", "competitor", "pain_point", "next_step"):
        present = sum(r[column] is not None for r in notes) / n
        assert 0.15 < present < 0.95, column
    assert {r["sentiment"] for r in notes} == {"positive", "neutral", "negative"}


def test_negated_competitor_is_not_evaluated() -> None:
    text = "Call w/ Jane (VP Marketing) at Acme. No longer looking at Braze. Also evaluating Klaviyo."
    attrs = extract(text, WED)
    braze = next(a for a in attrs if a.value == "Braze")
    assert braze.negated and text[braze.start : braze.end] == "Braze"
    assert predicted_values(attrs, "competitor") == {"Klaviyo"}
    assert braze.extractor == "rules" and braze.version


def test_names_are_matched_ignoring_case_beyond_ascii() -> None:
    """The rules skip a name's regular expression when a plain lower-case substring test rules it out; outside ASCII
    case-insensitive matching folds more than ``str.lower`` (a long s is an s), and the name is still found."""
    for text in ("ALSO EVALUATING KLAVIYO.", "Also evaluating \u212alaviyo.", "Zoë: also evaluating klaviyo."):
        assert predicted_values(extract(text, WED), "competitor") == {"Klaviyo"}, text
    assert predicted_values(extract("Also evaluating \u017ffmc.", WED), "competitor") == {"Salesforce Marketing Cloud"}
    assert predicted_values(extract("Also evaluating klaviy.", WED), "competitor") == set()  # too short for a typo


def test_change_of_mind_the_last_word_wins() -> None:
    dropped = extract("Comparing us w/ Iterable. Later: they dropped Iterable from the shortlist.", WED)
    assert predicted_values(dropped, "competitor") == set()
    back = extract("Had ruled out Iterable but now it's back on the table.", WED)
    assert predicted_values(back, "competitor") == {"Iterable"}


@pytest.mark.parametrize(
    ("sentence", "amount", "currency"),
    [
        ("Budget is about a hundred grand.", 100_000, None),
        ("They have €90,000 set aside.", 90_000, "EUR"),
        ("budget: 120k", 120_000, None),
        ("Budget approx 85k GBP for this yr.", 85_000, "GBP"),
        ("Can spend half a million dollars.", 500_000, "USD"),
        ("Budget is £1.5m.", 1_500_000, "GBP"),
    ],
)
def test_amounts(sentence: str, amount: int, currency: str | None) -> None:
    attrs = extract(sentence, WED)
    a = _one(attrs, "budget_amount")
    assert a.value == amount
    assert predicted_values(attrs, "budget_currency") == ({currency} if currency else set())
    assert sentence[a.start : a.end].strip()


def test_an_amount_without_a_budget_is_no_budget() -> None:
    attrs = extract("Renewal price went up 40%, they pay $30k today for 2 tools.", WED)
    assert predicted_values(attrs, "budget_amount") == set()
    assert predicted_values(attrs, "pain_point") == {"cost"}


@pytest.mark.parametrize(
    ("sentence", "when", "start", "end"),
    [
        ("Decision next quarter.", datetime.date(2026, 11, 15), "2027-01-01", "2027-03-31"),
        ("Want to decide after the summer.", datetime.date(2026, 6, 10), "2026-09-01", "2026-11-30"),
        ("Timeline: Q2 '27.", datetime.date(2026, 6, 10), "2027-04-01", "2027-06-30"),
        ("Looking to sign by Sep.", datetime.date(2026, 6, 10), "2026-06-10", "2026-09-30"),
        ("Go-live target early next year.", datetime.date(2026, 6, 10), "2027-01-01", "2027-03-31"),
        ("Decision in three months.", datetime.date(2026, 6, 10), "2026-06-10", "2026-09-10"),
    ],
)
def test_relative_timelines(sentence: str, when: datetime.date, start: str, end: str) -> None:
    a = _one(extract(sentence, when), "decision_timeline")
    assert a.value == {"start": start, "end": end}


def test_next_step_and_its_date() -> None:
    attrs = extract("Met Sam. NS: f/u call, next Tue. Very keen.", WED)
    assert _one(attrs, "next_step").value == "call"
    assert _one(attrs, "next_step_date").value == "2026-06-16"
    assert _one(attrs, "sentiment").value == "positive"
    assert _one(extract("Next step: demo the 4th.", WED), "next_step_date").value == "2026-07-04"


def test_reply_on_top_wins_and_quoted_dates_count_from_their_day() -> None:
    text = (
        "Quick update - Budget now 150k USD. Not impressed so far.\n\n"
        "On Mon, 01 Jun 2026, Dana wrote:\n"
        "> Call w/ Jo (Head of CRM) at Acme.\n"
        "> Budget is $90k.\n"
        "> Next step: demo tmrw.\n"
        "> Very keen."
    )
    attrs = extract(text, WED)
    assert _one(attrs, "budget_amount").value == 150_000
    assert _one(attrs, "next_step_date").value == "2026-06-02"
    assert _one(attrs, "sentiment").value == "negative"
    assert (_one(attrs, "seniority").value, _one(attrs, "role").value) == ("head", "crm")


def test_a_colleague_title_is_not_the_contact_title() -> None:
    attrs = extract("Quick sync with Lee from Acme. Also on the call: Tom (the analyst).", WED)
    assert predicted_values(attrs, "seniority") == set()


def test_typos_and_abbreviations() -> None:
    attrs = extract("Intersted in journey orchestraton. Comparing us w/ SFMC. Not considering Klavyio anymore.", WED)
    assert predicted_values(attrs, "product_interest") == {"Journey Orchestrator"}
    assert predicted_values(attrs, "competitor") == {"Salesforce Marketing Cloud"}


def test_scoring_counts_a_wrong_value_twice() -> None:
    truth = [{"note_id": "n1", "budget_amount": 95_000, "competitor": "Braze;Iterable", "sentiment": "neutral"}]
    predicted = {
        "n1": [
            Attribute("budget_amount", 90_000, 0, 3, 0.9),
            Attribute("competitor", "Braze", 0, 5, 0.9),
            Attribute("competitor", "Klaviyo", 0, 5, 0.9, negated=True),
            Attribute("sentiment", "neutral", 0, 0, 0.5),
        ]
    }
    s = score(truth, predicted)
    assert (s["budget_amount"].tp, s["budget_amount"].fp, s["budget_amount"].fn) == (0, 1, 1)
    assert (s["competitor"].tp, s["competitor"].fp, s["competitor"].fn) == (1, 0, 1)
    assert s["sentiment"].f1 == 1.0


def test_f1_on_generated_notes_above_floor(notes: list[dict]) -> None:
    pred = {r["note_id"]: extract(r["text"], datetime.datetime.fromisoformat(r["created_at"])) for r in notes}
    scores = score(notes, pred)
    low = {name: round(scores[name].f1, 3) for name in ATTRIBUTES if scores[name].f1 < 0.9}
    assert not low, low
    for r in notes[:50]:  # every span points into its note
        for a in pred[r["note_id"]]:
            assert 0 <= a.start <= a.end <= len(r["text"])


def test_negation_stops_at_a_contrast() -> None:
    attrs = extract("They're moving off Braze at renewal and looking hard at Iterable.", WED)
    assert predicted_values(attrs, "competitor") == {"Iterable"}
    attrs = extract("Klaviyo's out, too pricey. Now it's us vs Customer.io.", WED)
    assert predicted_values(attrs, "competitor") == {"Customer.io"}


def test_a_revised_amount_is_the_budget_and_the_first_otherwise() -> None:
    assert _one(extract("Budget got cut (was 300k, now 150k).", WED), "budget_amount").value == 150_000
    attrs = extract("Budget confirmed: 1.2M SEK (~$115k).", WED)
    assert (_one(attrs, "budget_amount").value, _one(attrs, "budget_currency").value) == (1_200_000, "SEK")


def test_dirty_text_never_raises() -> None:
    rng = random.Random(5)
    alphabet = "abc XYZ.,;:!?>\n0123456789$€£k-/'()@Qq日本"
    texts = ["", "\n\n", "On 31 Feb 2026, Dana wrote:\n> Budget 5k", "NS: demo Feb 30", "Budget $99999999999999999k"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))) for _ in range(300)]
    for text in texts:
        attrs = extract(text, datetime.date(2026, 12, 31))
        assert all(0 <= a.start <= a.end <= len(text) for a in attrs)
        assert [a.value for a in attrs if a.name == "sentiment"] in (["neutral"], ["positive"], ["negative"])
    quoted = extract("On 31 Feb 2026, Dana wrote:\n> Budget is 5k.", WED)
    assert _one(quoted, "budget_amount").value == 5_000
    assert predicted_values(extract("Budget $99999999999999999k", WED), "budget_amount") == set()


def test_lower_case_bullets_and_run_on_notes() -> None:
    attrs = extract("call w/ jo (vp marketing) at acme. also evaluating segment. ns: demo tmrw", WED)
    assert (_one(attrs, "seniority").value, _one(attrs, "role").value) == ("vp", "marketing")
    assert predicted_values(attrs, "competitor") == {"Segment"}
    # a capitalised note keeps "segment" a common word
    assert predicted_values(extract("They segment by region. Also evaluating Braze.", WED), "competitor") == {"Braze"}
    bullets = extract("- Met Jo (CTO)\n- budget: $40k\n- NS: start the trial, next Fri", WED)
    assert _one(bullets, "next_step").value == "trial" and _one(bullets, "next_step_date").value == "2026-06-19"
    run_on = extract("Met Jo (CTO) -- Interested in connectors -- Agreed on a demo tomorrow", WED)
    assert _one(run_on, "next_step").value == "demo"
    assert predicted_values(run_on, "product_interest") == {"Data Connectors"}


def test_world_notes_and_their_truth(tmp_path: Path) -> None:
    """The world's crm_notes are the varied notes, notes_facts.csv holds their facts, and the extractor reads them."""
    generate_world(WorldConfig(seed=21, people=1500, days=12), tmp_path)
    lines = [
        line
        for f in sorted((tmp_path / "landing" / "crm_notes").glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    notes = {}
    for line in lines:
        try:
            note = json.loads(line)
            created = datetime.datetime.fromisoformat(note["created_at"].replace("Z", "+00:00"))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # the world's malformed lines on purpose
        if isinstance(note.get("text"), str) and note.get("note_id"):
            notes[note["note_id"]] = extract(note["text"], created)
    truth = pd.read_csv(tmp_path / "truth" / "notes_facts.csv", dtype=str).astype(object)
    truth = truth.where(truth.notna(), None)
    assert {"timeline_start", "timeline_end", "competitor", "seniority", "next_step_date", "sentiment"} <= set(truth)
    rows = [r for r in truth.to_dict("records") if r["note_id"] in notes]
    assert len(rows) > 50
    scores = score(rows, notes)
    assert all(s.f1 >= 0.9 for s in scores.values()), {k: round(s.f1, 3) for k, s in scores.items()}


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("Demo went well. Next step: a trial in October.", "next_step", {"trial"}),
        ("They loved the demo.", "next_step", set()),
        ("Ping again in Feb.", "next_step", {"call"}),
        ("Klaviyo pricing is killing them.", "next_step", set()),
        ("They've decided against Customer.io.", "competitor", set()),
        ("He was keen on Segment but they've parked that.", "competitor", set()),
        ("Everything runs on Iterable today.", "competitor", set()),
        ("Lost to Iterable on price.", "competitor", {"Iterable"}),
        ("CMO signed off on €250k for martech.", "budget_amount", {250000}),
        ("Budget is set at AUD 150k.", "budget_currency", {"AUD"}),
        ("Data is spread over Shopify, HubSpot and 3 spreadsheets.", "pain_point", {"data_silos"}),
        ("Nobody can tie campaigns back to revenue.", "pain_point", {"attribution"}),
        ("Half their newsletters end up in junk.", "pain_point", {"deliverability"}),
        ("Chatted with Maria (Sr. Director, Demand Gen) at Helio.", "role", {"marketing"}),
        ("Not a good sign: the champion left.", "sentiment", {"negative"}),
        ("Demo went well.", "sentiment", {"positive"}),
        ("They'd like a sandbox trial from Aug 3.", "next_step_date", {"2026-08-03"}),
        ("Try again Thursday.", "next_step", {"call"}),
        ("Trial kicks off Monday.", "next_step_date", {"2026-06-15"}),
        ("They want to revisit pricing in march.", "next_step", {"call"}),
        ("Sarah from finance pinged: the PO is approved.", "role", {"finance"}),
        ("Interested in the data connectors.", "role", set()),
        ("Marketing Ops Analyst (Pia) asked for a demo.", "role", {"marketing"}),
        ("They're sticking with Salesforce Marketing Cloud.", "competitor", set()),
        ("Approx. $65k for year one.", "budget_amount", {65000}),
        ("Deal's dead for now.", "sentiment", {"negative"}),
        ("Budget approved!! €200k for the platform.", "budget_amount", {200000}),
        ("They want to consolidate Iterable and Segment into one tool.", "competitor", set()),
        ("Mentioned Braze's renewal is up in November.", "competitor", set()),
        ("Sent the ROI calculator.", "pain_point", set()),
        ("Reporting takes two days a month of copy-paste.", "pain_point", {"manual_work"}),
        ("Follow-up: they've chosen Klaviyo.", "sentiment", {"negative"}),
    ],
)
def test_phrasings_beyond_the_generator(text: str, name: str, expected: set) -> None:
    assert predicted_values(extract(text, WED), name) == expected


@pytest.mark.parametrize(
    ("sentence", "start", "end"),
    [
        ("Decision by end of Q4.", "2026-06-10", "2026-12-31"),
        ("Decision within 6 weeks.", "2026-06-10", "2026-07-22"),
        ("Decision pushed to after Christmas.", "2027-01-01", "2027-03-31"),
        ("6-month timeline for a decision.", "2026-06-10", "2026-12-10"),
        ("Board decides in January.", "2027-01-01", "2027-01-31"),
        ("Maybe Q4.", "2026-10-01", "2026-12-31"),
        ("Target go-live end of Q4.", "2026-06-10", "2026-12-31"),
    ],
)
def test_more_relative_timelines(sentence: str, start: str, end: str) -> None:
    assert predicted_values(extract(sentence, WED), "decision_timeline") == {(start, end)}


def test_attribute_rows_carry_evidence_and_skip_unreadable_notes() -> None:
    from mos_pipelines.notes.table import COLUMNS, attribute_rows

    notes = [
        {
            "note_id": "n1",
            "subject": "r1",
            "author": "Dana",
            "created_at": "2026-06-10T15:00:00Z",
            "note_text": "Budget ~$150k. Decision by end of Q3. No longer looking at Braze.",
        },
        {"note_id": "n2", "subject": "r2", "author": "Dana", "created_at": "2026-06-10", "note_text": "   "},
        {"note_id": "n3", "subject": "r3", "author": "Dana", "created_at": "not a date", "note_text": "Demo Friday."},
    ]
    rows = attribute_rows(notes)
    f = rows.frame
    assert list(f.columns) == list(COLUMNS) and set(f["note_id"]) == {"n1"}
    assert rows.skipped == {"no text": 1, "no created_at": 1}
    text = notes[0]["note_text"]
    assert all(text[s:e] == ev for s, e, ev in zip(f["span_start"], f["span_end"], f["evidence"], strict=True))
    by = f.set_index("attribute")
    assert by.loc["budget_amount", "value_number"] == 150000 and by.loc["budget_currency", "value"] == "USD"
    assert str(by.loc["decision_timeline", "value_end_date"]) == "2026-09-30"
    assert by.loc["competitor", "is_negated"] and by.loc["competitor", "extractor"] == "rules"


def test_a_build_reads_only_new_and_changed_notes_and_gets_the_rows_a_full_read_gets() -> None:
    """Rows of the previous build are reused for notes whose key (id, subject, author, timestamp, text, extractor)
    is unchanged; a changed or new note is read; a removed note leaves nothing; another extractor reads all again."""
    from mos_pipelines.notes.table import attribute_rows

    read: list[str] = []

    def counting(text: str, created: datetime.datetime) -> list:
        read.append(text)
        return extract(text, created)

    def note(note_id: str, text: str, subject: str = "r1") -> dict:
        return {"note_id": note_id, "subject": subject, "author": "Dana", "created_at": "2026-06-10", "note_text": text}

    day1 = [note("n1", "Budget ~$150k, decision by Q3."), note("n2", "Evaluating Braze."), note("n3", "Demo Friday.")]
    first = attribute_rows(day1, counting)
    assert (first.read, first.reused, len(read)) == (3, 0, 3)
    day2 = [day1[0], note("n2", "No longer looking at Braze."), note("n4", "CFO joins next call."), {**day1[2]}]
    day2[3]["subject"] = "r9"  # the same text about someone else: read again (its rows name the subject)
    read.clear()
    second = attribute_rows(day2, counting, previous=first.frame)
    assert (second.read, second.reused) == (3, 1) and read == [n["note_text"] for n in day2[1:]]
    fresh = attribute_rows(day2).frame
    order = ["note_id", "attribute", "value", "span_start"]
    assert (
        second.frame.sort_values(order).reset_index(drop=True).equals(fresh.sort_values(order).reset_index(drop=True))
    )
    read.clear()
    other = attribute_rows(day2, counting, previous=second.frame, extractor_id="llm some-model prompt v2")
    assert other.read == 4 and other.reused == 0


def test_a_note_landed_twice_keeps_its_rows_once_a_copy_and_the_notes_order() -> None:
    """Reused rows come once per note of that key (not once per earlier copy too: a note landed twice has its rows
    twice in the previous table), in the order a full read gives."""
    from mos_pipelines.notes.table import attribute_rows

    def note(note_id: str, text: str) -> dict:
        return {"note_id": note_id, "subject": "r1", "author": "Dana", "created_at": "2026-06-10", "note_text": text}

    notes = [note("n1", "Evaluating Braze, budget ~$150k."), note("n2", "Demo Friday."), note("n3", "CFO joins.")]
    notes.insert(2, dict(notes[0]))  # the same note landed twice
    full = attribute_rows(notes)
    again = attribute_rows(notes, previous=full.frame.iloc[::-1])  # a table gives its rows in any order
    assert (again.read, again.reused) == (0, 4)
    assert list(again.frame["note_id"]) == list(full.frame["note_id"])
    assert again.frame.groupby("note_id").size().to_dict() == full.frame.groupby("note_id").size().to_dict()
    newer = attribute_rows([*notes, note("n4", "Klaviyo is out.")], previous=full.frame)
    assert (newer.read, newer.reused) == (1, 4) and list(newer.frame["note_id"])[-1] == "n4"
