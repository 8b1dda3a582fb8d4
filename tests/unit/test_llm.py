"""The LLM layer: offline provider with the network unreachable, cost ledger against litellm's price map,
grounding of numbers, fallbacks, and the prompt registry. No test reaches a network model."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from mos_pipelines.configuration import DOMAINS, ConfigError
from mos_pipelines.configuration import load_llm as load_config
from mos_pipelines.llm import LLM, Ledger, check_grounding, get_prompt
from mos_pipelines.llm.client import import_litellm

FACTS = {
    "scope": "In EU",
    "a_label": "email",
    "b_label": "display",
    "verb": "converts",
    "prefix": "",
    "suffix": " % of sessions",
    "fmt": ".1f",
    "a_display": 8.33,
    "b_display": 2.1,
    "ratio": 3.96,
    "ratio_phrase": "as often",
    "confidence_level": 95,
    "ci_low": 2.1,
    "ci_high": 7.4,
    "days": 21,
    "must_mention": ["email", "display"],
}


def write_config(path: Path, insight_model: str, fallbacks: str = "[]", extra: str = "") -> Path:
    path.write_text(
        "defaults: {num_retries: 0, timeout_s: 5}\n"
        "tasks:\n"
        f"  insight_phrasing: {{model: {insight_model}, fallbacks: {fallbacks}{extra}}}\n"
        "  email_copy: {model: mos-offline/copywriter}\n"
        "  question_answering: {model: mos-offline/analyst}\n"
    )
    return path


def test_offline_provider_writes_the_template_with_the_network_unreachable(no_network, tmp_path: Path) -> None:
    con = duckdb.connect()
    llm = LLM(load_config(write_config(tmp_path / "llm.yaml", "mos-offline/insight-writer")), Ledger(con))
    out = llm.generate("insight_phrasing", "insight.channel_comparison", FACTS, context="test")
    assert out.model == "mos-offline/insight-writer" and not out.flagged
    assert out.text == get_prompt("insight.channel_comparison").render(FACTS)
    assert out.text.startswith(
        "In EU, email converts 8.3 % of sessions vs 2.1 % of sessions for display (3.96× as often"
    )
    row = con.sql("select * from ops.llm_calls").df().iloc[0]
    assert row["outcome"] == "ok" and row["cost_usd"] == 0.0 and row["tokens_in"] > 50 and row["tokens_out"] > 10
    assert row["prompt_version"] == get_prompt("insight.channel_comparison").version
    assert not no_network  # nothing even tried to connect


def test_the_bundled_config_uses_only_the_offline_provider() -> None:
    config = load_config(DOMAINS["llm"].file)
    assert all(m.startswith("mos-offline/") for t in config.tasks for m in config.for_task(t).chain)


def test_priced_model_cost_is_tokens_times_litellm_prices(no_network, tmp_path: Path) -> None:
    grounded = "In EU, email converts 8.3 % vs 2.1 % for display, about 4× as often."
    path = write_config(tmp_path / "llm.yaml", "gpt-4o-mini", extra=f", extra: {{mock_response: '{grounded}'}}")
    con = duckdb.connect()
    llm = LLM(load_config(path), Ledger(con))
    out = llm.generate("insight_phrasing", "insight.channel_comparison", FACTS)
    assert out.text == grounded and out.model == "gpt-4o-mini" and not out.flagged
    price = import_litellm().model_cost["gpt-4o-mini"]
    row = con.sql("select * from ops.llm_calls").df().iloc[0]
    expected = row["tokens_in"] * price["input_cost_per_token"] + row["tokens_out"] * price["output_cost_per_token"]
    assert row["tokens_in"] > 0 and row["tokens_out"] > 0
    assert row["cost_usd"] == pytest.approx(expected, rel=1e-9) and row["cost_usd"] > 0
    assert llm.ledger.totals()["cost_usd"] == pytest.approx(expected, rel=1e-9)


def test_a_text_with_a_number_not_in_the_facts_is_rejected_and_the_template_used(no_network, tmp_path: Path) -> None:
    invented = "In EU, email converts 8.3 % vs 2.1 % for display: shifting budget would add 35 % revenue."
    path = write_config(tmp_path / "llm.yaml", "gpt-4o-mini", extra=f", extra: {{mock_response: '{invented}'}}")
    con = duckdb.connect()
    out = LLM(load_config(path), Ledger(con)).generate("insight_phrasing", "insight.channel_comparison", FACTS)
    assert out.flagged and out.model == "template" and "35 %" in (out.reason or "")
    assert out.text == get_prompt("insight.channel_comparison").render(FACTS)
    row = con.sql("select outcome, detail, cost_usd from ops.llm_calls").df().iloc[0]
    assert row["outcome"] == "rejected" and "35 %" in row["detail"] and row["cost_usd"] > 0


def test_a_failing_model_falls_back_to_the_next_in_the_chain(no_network, tmp_path: Path) -> None:
    # An OpenAI-compatible server on a closed local port: the call fails without leaving the machine.
    path = write_config(
        tmp_path / "llm.yaml",
        "openai/gpt-4o-mini",
        fallbacks="[mos-offline/insight-writer]",
        extra=", extra: {api_base: 'http://127.0.0.1:9/v1', api_key: none}",
    )
    con = duckdb.connect()
    out = LLM(load_config(path), Ledger(con)).generate("insight_phrasing", "insight.channel_comparison", FACTS)
    assert out.model == "mos-offline/insight-writer" and not out.flagged
    rows = con.sql("select model, attempt, outcome from ops.llm_calls order by attempt").df()
    assert list(rows["outcome"]) == ["error", "ok"] and list(rows["attempt"]) == [1, 2]


def test_no_model_answering_gives_the_flagged_template(no_network, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "llm.yaml", "openai/gpt-4o-mini", extra=", extra: {api_base: 'http://127.0.0.1:9/v1', api_key: none}"
    )
    out = LLM(load_config(path)).generate("insight_phrasing", "insight.channel_comparison", FACTS)
    assert out.flagged and out.model == "template" and out.reason.startswith("no model answered")


@pytest.mark.parametrize(
    ("text", "grounded"),
    [
        ("Revenue was $1,234 from 1.2k sessions.", True),  # facts 1234.4 and 1187
        ("Revenue was $1.2k; CVR 12 %.", True),  # 0.1234 as a percent
        ("Spend reached $1.2M", True),  # 1_234_567
        ("Email beats display 4.0× (CI 2.1–7.4×)", True),
        ("Email beats display 4.5×", False),
        ("CVR 13 %", False),
        ("Campaign q3_launch2 on 2026-01-21 dropped 35 %", True),  # id and date are facts; 35 from -0.35
        ("It dropped 21 %", False),  # the date's digits lend nothing
        ("Spend reached $1.3M", False),
    ],
)
def test_grounding_allows_rounding_and_formatting_only(text: str, grounded: bool) -> None:
    facts = {
        "revenue": 1234.4,
        "sessions": 1187,
        "cvr": 0.1234,
        "spend": 1_234_567,
        "ratio": 3.96,
        "ci": [2.1, 7.4],
        "campaign": "q3_launch2",
        "week_end": "2026-01-21",
        "change": -0.35,
    }
    result = check_grounding(text, facts)
    assert result.grounded is grounded, result


def test_every_prompt_has_a_stable_version_and_describes_its_guardrails() -> None:
    prompt = get_prompt("insight.anomaly")
    assert prompt.version == get_prompt("insight.anomaly").version and len(prompt.version) == 12
    facts = {
        "metric_label": "Sessions",
        "scope": "overall",
        "direction": "fell",
        "change_pct": 35.0,
        "week_end": "2026-01-21",
        "prefix": "",
        "fmt": ",.0f",
        "observed": 650.0,
        "expected": 1000.0,
        "baseline_weeks": 2,
        "confidence_level": 95,
        "ci_low_pct": -41.0,
        "ci_high_pct": -29.0,
        "week_days": 7,
    }
    system, user = prompt.messages(facts)
    assert "no number that is not in the facts" in system["content"]
    text = prompt.render(facts)
    assert text == (
        "Sessions overall fell 35 % in the 7 days to 2026-01-21: 650 vs 1,000 expected from the same "
        "weekdays of the 2 weeks before (95 % CI -41 % to -29 %)."
    )
    assert prompt.violations(text, facts) == [] and "<facts>" in user["content"]


def test_a_task_without_a_model_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "llm.yaml"
    path.write_text("tasks:\n  image_captions: {fallbacks: []}\n  insight_phrasing: {model: ''}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    found = {(p.key, p.expected) for p in error.value.problems}
    assert found == {
        ("tasks.image_captions.model", "a value (the key is required)"),
        ("tasks.insight_phrasing.model", "non-empty text"),
    }
