"""`mos prompts test`: golden cases for every prompt, current vs proposed, and the gate that keeps a prompt version
whose golden cases failed from being used. No test reaches a network model: model answers come from a litellm
custom provider registered here."""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from mos_pipelines.activation.content import CopyBrief, LlmCopyRenderer
from mos_pipelines.cli import app
from mos_pipelines.configuration import ConfigError
from mos_pipelines.configuration import load_llm as load_config
from mos_pipelines.configuration.activation import CopyTemplate
from mos_pipelines.insights.candidate import Candidate
from mos_pipelines.insights.pipeline import phrase
from mos_pipelines.insights.selection import ACCEPTED
from mos_pipelines.llm import LLM, Ledger, get_prompt
from mos_pipelines.llm import prompts as registry
from mos_pipelines.llm.client import import_litellm
from mos_pipelines.llm.gate import PromptBlocked, record, resolve, used_failed_versions
from mos_pipelines.llm.golden import Expect, judge, load_golden, load_proposed, run, run_version, template_answer
from mos_pipelines.llm.prompts import Prompt

runner = CliRunner()

# The planted regression: a template edit that makes every pacing sentence state a number no fact gives.
INVENTING = """prompts:
  insight.pacing:
    template: >-
      Campaign {campaign_id} spent ${spend:,.0f} of its ${budget:,.0f} budget over the last {days} days
      ({pace_pct:.0f} % of plan, {confidence_level:.0f} % CI {ci_low_pct:.0f}–{ci_high_pct:.0f} %); pacing like
      this usually costs about 12 % of the month's conversions.
"""

PACING_FACTS = {
    "campaign_id": "ps_brand_q1",
    "spend": 10452.37,
    "budget": 14000.0,
    "days": 14,
    "pace_pct": 74.66,
    "confidence_level": 95,
    "ci_low_pct": 69.8,
    "ci_high_pct": 79.5,
    "must_mention": ["ps_brand_q1"],
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MOS_LLM_CONFIG", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def golden() -> dict:
    return load_golden()


def test_every_prompt_has_three_golden_cases_that_its_current_version_passes(golden: dict) -> None:
    assert set(golden) == set(registry.PROMPTS)
    report = run(golden)
    for c in report.comparisons:
        assert len(c.current.cases) >= 3, c.prompt_id
        assert c.current.passed, (c.prompt_id, [x.as_dict() for x in c.current.cases if not x.passed])
        if "json_object" not in registry.PROMPTS[c.prompt_id].guardrails:
            assert c.current.grounding_rate == 1.0, c.prompt_id  # grounding is checked on every text prompt
    assert not report.regressed and not report.current_failed


@pytest.mark.parametrize(
    ("text", "expect", "rule", "offending"),
    [
        ("ps_brand_q1 spent $10,452, 35 % above plan.", {"grounded": True}, "grounded", "35 %"),
        ("Spend was $10,452.", {"required": ["ps_brand_q1"]}, "required", "ps_brand_q1"),
        ("ps_brand_q1 spend will double next week.", {"forbidden": ["will double"]}, "forbidden", "will double"),
        ("ps_brand_q1: see https://x.io", {"forbidden_patterns": ["https?://"]}, "forbidden", "https://"),
        ("ps_brand_q1 spent.", {"min_chars": 40}, "min_chars", "18 characters (< 40)"),
        ("ps_brand_q1 " + "x" * 50, {"max_chars": 30}, "max_chars", "62 characters (> 30)"),
        ("ps_brand_q1 spent\nmore", {"single_line": True}, "single_line", "more"),
        ("ps_brand_q1 {not json", {"json_object": True}, "json", "ps_brand_q1"),
        ('{"metric": "ps_brand_q1"}', {"json_keys": ["metric", "segment"]}, "json_keys", "segment"),
    ],
)
def test_each_rule_fails_and_names_the_offending_text(text: str, expect: dict, rule: str, offending: str) -> None:
    facts = {"spend": 10452.37, "must_mention": ["ps_brand_q1"] if rule != "required" else []}
    failures, _ = judge(text, facts, Expect(**expect))
    assert [f.rule for f in failures] == [rule]
    assert offending in failures[0].offending
    passing = "ps_brand_q1 spent $10,452 of plan, a sentence long enough for the bound."
    if rule not in ("json", "json_keys"):
        assert judge(passing, facts, Expect(**{k: v for k, v in expect.items() if k != "max_chars"}))[0] == []


def test_a_proposed_file_with_mistakes_names_file_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "proposed.yaml"
    path.write_text(
        "prompts:\n"
        "  insight.pacin:\n    template: x\n"
        "  insight.anomaly:\n    guardrails: [numbers_grounded, max_chars:many]\n"
        "  email.copy:\n    template: '{subject'\n"
        "  question.answer: {}\n"
        "  insight.pacing:\n    tone: friendly\n"
    )
    with pytest.raises(ConfigError) as error:
        load_proposed(path)
    found = {(p.key, p.line) for p in error.value.problems}
    assert found == {
        ("prompts.insight.pacin", 2),
        ("prompts.insight.anomaly.guardrails[1]", 5),
        ("prompts.email.copy.template", 7),
        ("prompts.question.answer", 8),
        ("prompts.insight.pacing.tone", 10),
    }
    assert all(p.file == str(path) for p in error.value.problems)


def test_a_proposed_version_is_the_registry_hash_of_what_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "proposed.yaml"
    current = get_prompt("insight.pacing")
    path.write_text(f"prompts:\n  insight.pacing:\n    template: {json.dumps(current.template)}\n")
    assert load_proposed(path)["insight.pacing"].version == current.version  # nothing changed: same version
    path.write_text(INVENTING)
    changed = load_proposed(path)["insight.pacing"]
    assert changed.version != current.version and changed.instructions == current.instructions
    assert changed.version == replace(current, template=changed.template).version


def test_planted_regression_is_caught_and_the_gate_blocks_that_version(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list
) -> None:
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(INVENTING)
    home.mkdir(parents=True)
    duckdb.connect(str(home / "warehouse.duckdb")).close()  # a warehouse (without one nothing is recorded)
    result = runner.invoke(app, ["prompts", "test", "--proposed", str(proposed)])
    assert result.exit_code == 1, result.output
    out = result.output.replace("\n", " ")
    assert "REGRESSION case under_delivering newly fails (grounded: 12 %)" in out
    assert out.count("REGRESSION case") == 3  # the three pacing cases, no other prompt
    assert "REGRESSION pass rate 100% -> 0%" in out and "REGRESSION grounding pass rate 100% -> 0%" in out

    bad = load_proposed(proposed)["insight.pacing"]
    good = get_prompt("insight.pacing")
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    rows = con.execute(
        "select prompt_version, role, passed, cases, cases_passed, grounding_rate, results from ops.prompt_tests "
        "where prompt_id = 'insight.pacing' order by role"
    ).fetchall()
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (good.version, "current", True, 3, 3),
        (bad.version, "proposed", False, 3, 0),
    ]
    assert rows[1][5] == 0.0 and json.loads(rows[1][6])[0]["failures"] == [{"rule": "grounded", "offending": "12 %"}]

    # The regressed version is deployed anyway (the registry edited): the gate uses the last passing version.
    monkeypatch.setitem(registry.PROMPTS, "insight.pacing", bad)
    llm = LLM(load_config(), Ledger(con))
    out_gen = llm.generate("insight_phrasing", "insight.pacing", PACING_FACTS, context="test")
    assert out_gen.prompt_version == good.version and out_gen.text == good.render(PACING_FACTS)
    assert "12 %" not in out_gen.text and out_gen.model == "mos-offline/insight-writer"
    assert f"version {bad.version} failed its golden cases" in (out_gen.gate or "")
    assert "case under_delivering: grounded: 12 %" in (out_gen.gate or "")
    call = con.execute("select prompt_version, outcome, detail from ops.llm_calls").fetchall()
    assert call == [(good.version, "ok", out_gen.gate)]
    assert not no_network
    con.close()


def _record_pacing(con: duckdb.DuckDBPyConnection, *prompts: Prompt) -> None:
    """Run the pacing cases for each prompt (template answers) and record them, a minute apart."""
    cases = load_golden()["insight.pacing"]
    for minute, prompt in enumerate(prompts):
        result = run_version(prompt, cases, template_answer, "template")
        record(con, [("current", result)], datetime.datetime(2026, 12, 6, 18, minute, tzinfo=datetime.UTC))


def _candidate(status: str) -> Candidate:
    return Candidate(
        key=f"budget_pacing:ps_brand_q1:{status}",
        insight_type="budget_pacing",
        subject={"campaign_id": "ps_brand_q1"},
        objective="acquisition",
        hypothesis="spend follows the plan",
        prompt_id="insight.pacing",
        facts=PACING_FACTS,
        call_to_action="raise bids",
        evidence={},
        status=status,
    )


def test_the_gate_in_insight_phrasing_and_the_check_on_the_insights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = get_prompt("insight.pacing"), load_proposed_text(tmp_path, INVENTING)["insight.pacing"]
    con = duckdb.connect()
    _record_pacing(con, good, bad)
    monkeypatch.setitem(registry.PROMPTS, "insight.pacing", bad)  # the regressed version deployed
    accepted, rejected = _candidate(ACCEPTED), _candidate("rejected")
    phrase([accepted, rejected], LLM(load_config(), Ledger(con)))
    for c in (accepted, rejected):  # the model's text and the template-only statement alike
        assert c.statement == good.render(PACING_FACTS) and c.phrasing["prompt_version"] == good.version
        assert c.phrasing["prompt_gate"].startswith(f"prompt insight.pacing version {bad.version} failed")
    used = [("i1", {"prompt_id": "insight.pacing", "prompt_version": bad.version}), ("i2", accepted.phrasing)]
    assert used_failed_versions(con, used) == [
        f"i1: prompt insight.pacing version {bad.version} failed its golden cases (2026-12-06 18:01 UTC)"
    ]


def test_without_a_passing_version_a_failed_version_is_not_used_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = load_proposed_text(tmp_path, INVENTING)["insight.pacing"]
    con = duckdb.connect()
    _record_pacing(con, bad)
    assert resolve("insight.pacing", con).prompt == get_prompt("insight.pacing")  # the registry's: never tested
    monkeypatch.setitem(registry.PROMPTS, "insight.pacing", bad)
    llm = LLM(load_config(), Ledger(con))
    with pytest.raises(PromptBlocked, match="no passing version"):
        llm.generate("insight_phrasing", "insight.pacing", PACING_FACTS)
    accepted, rejected = _candidate(ACCEPTED), _candidate("rejected")
    phrase([accepted, rejected], llm)
    for c in (accepted, rejected):
        assert c.statement.endswith("not phrased (prompt insight.pacing failed its golden cases; see phrasing).")
        assert c.phrasing["flagged"] and "no passing version" in c.phrasing["reason"]
    assert con.execute("select count(*) from ops.llm_calls").fetchone() == (0,)  # no model was asked


class _Follower:
    """A stand-in model that follows its instructions: it answers the acceptable example the messages carry, and
    adds an estimate of the revenue at stake when the instructions ask for one (a number it makes up)."""

    calls = 0

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
        from litellm.types.utils import Choices, Message, ModelResponse, Usage

        type(self).calls += 1
        system, user = messages[0]["content"], messages[-1]["content"]
        text = user.split("Example of an acceptable answer: ", 1)[1]
        if "revenue at stake" in system:
            text += " About $4,800 of revenue is at stake."
        return ModelResponse(
            model=model,
            created=int(time.time()),
            choices=[Choices(index=0, finish_reason="stop", message=Message(role="assistant", content=text))],
            usage=Usage(prompt_tokens=10, completion_tokens=10, total_tokens=20),
        )


def test_an_instruction_change_is_judged_on_a_models_answers(
    home: Path, tmp_path: Path, no_network: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    litellm = import_litellm()
    handler = type("FollowerLLM", (_Follower, litellm.CustomLLM), {})()
    monkeypatch.setattr(
        litellm,
        "custom_provider_map",
        [*litellm.custom_provider_map, {"provider": "golden-test", "custom_handler": handler}],
    )
    proposed = tmp_path / "proposed.yaml"
    current = get_prompt("insight.experiment_winner").instructions
    proposed.write_text(
        "prompts:\n  insight.experiment_winner:\n    instructions: "
        + json.dumps(current + " End with the revenue at stake.")
        + "\n"
    )
    # The template alone does not see the instruction: the proposed version passes when the template answers.
    template = runner.invoke(app, ["prompts", "test", "--proposed", str(proposed), "--model", "template", "--json"])
    assert template.exit_code == 0, template.output
    assert json.loads(template.output)["note"].startswith("not recorded: no warehouse at")
    assert not (home / "warehouse.duckdb").exists()  # none is created for the record
    answered = runner.invoke(
        app,
        ["prompts", "test", "--proposed", str(proposed), "--model", "golden-test/follower", "--json", "--no-record"],
    )
    assert answered.exit_code == 1, answered.output
    report = json.loads(answered.output)
    winner = next(p for p in report["prompts"] if p["prompt_id"] == "insight.experiment_winner")
    assert winner["current"]["source"] == "golden-test/follower" and winner["current"]["pass_rate"] == 1.0
    assert winner["proposed"]["grounding_rate"] == 0.0
    assert winner["regressions"][0].startswith("case variant_b_beats_others newly fails (grounded: $4,800")
    cases = sum(len(c) for c in load_golden().values())
    assert type(handler).calls == cases + 3  # every case of the current prompts, and the proposed one's three
    assert not no_network


def test_a_better_or_equal_proposal_passes_and_a_failing_current_fails_without_one(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(
        "prompts:\n  insight.pacing:\n    instructions: Write one plain sentence from the facts, names and figures kept.\n"
    )
    result = runner.invoke(app, ["prompts", "test", "--proposed", str(proposed), "--no-record"])
    assert result.exit_code == 0, result.output
    assert "proposed" in result.output and "REGRESSION" not in result.output
    bad = load_proposed_text(tmp_path, INVENTING)["insight.pacing"]
    monkeypatch.setitem(registry.PROMPTS, "insight.pacing", bad)
    failing = runner.invoke(app, ["prompts", "test", "--no-record"])
    assert failing.exit_code == 1 and "FAIL under_delivering: grounded: 12 %" in failing.output


def load_proposed_text(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return load_proposed(path)


def test_email_copy_and_blueprint_intake_take_their_deterministic_path_when_blocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list
) -> None:
    con = duckdb.connect()
    golden = load_golden()
    changed = {}
    for prompt_id in ("email.copy", "blueprint.objective"):  # a template that breaks every case of the prompt
        changed[prompt_id] = replace(get_prompt(prompt_id), template="Save 35 % today: {subject!r}")
        result = run_version(changed[prompt_id], golden[prompt_id], template_answer, "template")
        assert not result.passed
        record(con, [("proposed", result)], datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC))
        monkeypatch.setitem(registry.PROMPTS, prompt_id, changed[prompt_id])
    config = tmp_path / "llm.yaml"  # intake by a (mocked) hosted model, so the structured path asks for a prompt
    config.write_text("tasks:\n  blueprint_intake: {model: gpt-4o-mini, fallbacks: [], extra: {mock_response: '{}'}}\n")
    monkeypatch.setenv("MOS_LLM_CONFIG", str(config))
    llm = LLM(load_config(), Ledger(con))
    template = CopyTemplate(subject="{first_name}, 20% off", body="Save 20% on your first year.")
    copy = LlmCopyRenderer(llm).render(CopyBrief("em_trial_nurture", "B", None, "em_trial_nurture/B", template))
    assert (copy.subject, copy.body, copy.renderer, copy.flagged) == (template.subject, template.body, "static", True)
    assert "email.copy" in (copy.reason or "") and "no passing version" in (copy.reason or "")
    asked = llm.structured("blueprint_intake", "blueprint.objective", {"example": "{}"}, lambda data: data)
    assert asked.value is None and asked.model == "blocked" and "blueprint.objective" in (asked.reason or "")
    assert con.execute("select count(*) from ops.llm_calls").fetchone() == (0,) and not no_network


def test_a_golden_file_with_mistakes_names_file_key_and_line(tmp_path: Path) -> None:
    (tmp_path / "insight.pacing.yaml").write_text(
        "defaults:\n  grounded: yes please\n"
        "cases:\n"
        "  - id: a\n    facts: {campaign_id: x}\n"
        "  - id: a\n    facts: {campaign_id: y}\n    expect: {max_chars: 0, forbidden_patterns: ['(']}\n"
        "  - id: c\n"
    )
    with pytest.raises(ConfigError) as error:
        load_golden(tmp_path)
    found = {(p.key, p.line) for p in error.value.problems}
    assert found == {
        ("defaults.grounded", 2),
        ("cases[1].expect.max_chars", 8),
        ("cases[1].expect.forbidden_patterns[0]", 8),
        ("cases[2].facts", 9),
    }
    (tmp_path / "insight.pacing.yaml").write_text("cases:\n  - {id: a, facts: {}}\n  - {id: a, facts: {}}\n")
    with pytest.raises(ConfigError) as error:
        load_golden(tmp_path)
    assert (error.value.key, error.value.line, error.value.expected) == (
        "cases[1].id",
        3,
        "a case id used once ('a' is listed twice)",
    )
    (tmp_path / "insight.pacing.yaml").unlink()
    (tmp_path / "insight.pace.yaml").write_text("cases: [{id: a, facts: {}}]\n")
    with pytest.raises(ConfigError, match="a file named for a prompt id"):
        load_golden(tmp_path)


def test_a_template_naming_a_fact_the_cases_lack_fails_each_case_by_name(tmp_path: Path) -> None:
    changed = replace(get_prompt("insight.pacing"), template="Campaign {campaign_id} is {pace_label}.")
    result = run_version(changed, load_golden()["insight.pacing"], template_answer, "template")
    assert [(c.case_id, c.failures[0].rule) for c in result.cases] == [
        ("under_delivering", "render"),
        ("over_plan_small_budget", "render"),
        ("large_budget_near_plan", "render"),
    ]
    assert "the facts have no 'pace_label'" in result.cases[0].failures[0].offending
