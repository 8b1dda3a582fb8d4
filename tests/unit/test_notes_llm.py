"""The LLM path of note extraction with a mocked model (litellm's mock_response: nothing leaves the machine):
schema-checked, every fact grounded in the note (an invented value is rejected), costed in ops.llm_calls; the
offline model means the rules answer."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import duckdb
import pytest
import yaml

from mos_pipelines.notes import extract
from mos_pipelines.notes.llm_path import extract_with_llm, parse_answer

NOTE = "Spoke to Maria (VP Marketing). No longer looking at Braze, now evaluating Iterable. Budget ~$150k."
DAY = datetime.date(2026, 6, 10)


def _llm(tmp_path: Path, answer: object | None):
    from mos_pipelines.configuration import load_llm
    from mos_pipelines.llm import LLM, Ledger

    if answer is None:
        task = {"model": "mos-offline/notes", "fallbacks": []}
    else:
        content = answer if isinstance(answer, str) else json.dumps(answer)
        task = {"model": "gpt-4o-mini", "fallbacks": [], "extra": {"mock_response": content}}
    path = tmp_path / "llm.yaml"
    path.write_text(yaml.safe_dump({"tasks": {"note_extraction": task}}))
    con = duckdb.connect()
    return LLM(load_llm(path), Ledger(con)), con


def _fact(attribute: str, value: str, evidence: str, negated: bool = False) -> dict:
    return {"attribute": attribute, "value": value, "evidence": evidence, "negated": negated}


def test_offline_model_means_the_rules(tmp_path: Path, no_network: list) -> None:
    llm, con = _llm(tmp_path, None)
    got = extract_with_llm(NOTE, DAY, llm)
    assert got.model == "rules" and got.attributes == extract(NOTE, DAY)
    assert con.execute("select count(*) from ops.llm_calls").fetchone()[0] == 0


def test_a_grounded_answer_is_used_and_an_invented_value_rejected(tmp_path: Path, no_network: list) -> None:
    answer = {
        "facts": [
            _fact("competitor", "Iterable", "evaluating Iterable"),
            _fact("competitor", "Braze", "No longer looking at Braze", negated=True),
            _fact("competitor", "Klaviyo", "evaluating Iterable"),  # invented: the note never names Klaviyo
            _fact("budget_amount", "150000", "Budget ~$150k"),
            _fact("budget_amount", "900000", "Budget ~$150k"),  # invented amount
            _fact("budget_currency", "USD", "$150k"),
            _fact("seniority", "vp", "VP Marketing"),
            _fact("pain_point", "cost", "costs are too high"),  # a quote that is not in the note
        ]
    }
    llm, con = _llm(tmp_path, answer)
    got = extract_with_llm(NOTE, DAY, llm)
    read = {(a.name, str(a.value), a.negated) for a in got.attributes}
    assert read == {
        ("competitor", "Iterable", False),
        ("competitor", "Braze", True),
        ("budget_amount", "150000", False),
        ("budget_currency", "USD", False),
        ("seniority", "vp", False),
    }
    rejected = {(f["attribute"], f["value"]) for f, _ in got.rejected}
    assert rejected == {("competitor", "Klaviyo"), ("budget_amount", "900000"), ("pain_point", "cost")}
    assert all(a.extractor == "llm" and a.prompt_version for a in got.attributes)
    iterable = next(a for a in got.attributes if a.value == "Iterable")
    assert NOTE[iterable.start : iterable.end] == "evaluating Iterable"
    task, outcome, cost, tokens = con.execute("select task, outcome, cost_usd, tokens_in from ops.llm_calls").fetchone()
    assert (task, outcome) == ("note_extraction", "ok") and cost > 0 and tokens > 0


@pytest.mark.parametrize(
    "answer",
    [
        "Iterable and a budget of 150k",  # not JSON
        {"facts": [{"attribute": "favourite_colour", "value": "blue", "evidence": "Maria"}]},  # not the schema
        {"facts": [_fact("competitor", "Iterable", "evaluating Iterable")], "summary": "extra key"},
    ],
)
def test_an_answer_outside_the_schema_is_rejected_and_the_rules_answer(
    tmp_path: Path, no_network: list, answer: object
) -> None:
    llm, con = _llm(tmp_path, answer)
    got = extract_with_llm(NOTE, DAY, llm)
    assert got.model == "rules" and got.attributes == extract(NOTE, DAY)
    assert con.execute("select outcome from ops.llm_calls").fetchall() == [("rejected",)]


def test_values_outside_the_vocabulary_and_bad_dates_are_rejected() -> None:
    text = "Demo next Tuesday, decision in Q3. Interested in the orchestrator."
    kept, rejected = parse_answer(
        {
            "facts": [
                _fact("next_step", "demo", "Demo"),
                _fact("next_step_date", "2026-06-16", "next Tuesday"),
                _fact("next_step_date", "2026-06-30", "next Tuesday"),  # not the day "next Tuesday" is
                _fact("decision_timeline", "2026-09-30/2026-07-01", "in Q3"),  # ends before it starts
                _fact("product_interest", "Journey Orchestrator", "the orchestrator"),
                _fact("product_interest", "Rocket Launcher", "the orchestrator"),  # not a product
            ]
        },
        text,
        DAY,
    )
    assert {(a.name, a.value) for a in kept} == {
        ("next_step", "demo"),
        ("next_step_date", "2026-06-16"),
        ("product_interest", "Journey Orchestrator"),
    }
    assert {f["value"] for f, _ in rejected} == {"2026-09-30/2026-07-01", "Rocket Launcher", "2026-06-30"}


def test_the_table_uses_the_configured_extractor(tmp_path: Path, no_network: list) -> None:
    from mos_pipelines.configuration import load_llm
    from mos_pipelines.notes.table import attribute_rows, configured_extractor

    note = {"note_id": "n1", "subject": "r1", "author": "A", "created_at": "2026-06-10", "note_text": NOTE}
    offline, name = configured_extractor(None, load_llm())
    assert name == "rules" and set(attribute_rows([note], offline).frame["extractor"]) == {"rules"}
    _llm(tmp_path, {"facts": [_fact("competitor", "Klaviyo", "evaluating Iterable")]})  # writes tmp_path/llm.yaml
    con = duckdb.connect()
    through_llm, name = configured_extractor(con, load_llm(tmp_path / "llm.yaml"))
    frame = attribute_rows([note], through_llm).frame
    assert name == "llm" and frame.empty  # the only fact was invented: nothing reaches the table
    assert con.execute("select task, outcome from ops.llm_calls").fetchall() == [("note_extraction", "ok")]
