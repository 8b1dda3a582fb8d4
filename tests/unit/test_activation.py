"""Activation logic without servers or Dagster: hashing against the platforms' published examples, copy
guardrails and the approval queue, the ledger's state machine, retry timing, config validation."""

from __future__ import annotations

import datetime
import email
import json
from pathlib import Path

import duckdb
import pytest
import yaml

from mos_pipelines.activation import content, ledger
from mos_pipelines.activation.channels.email import build_message
from mos_pipelines.activation.channels.slack import slack_message
from mos_pipelines.activation.hashing import (
    IdentifierError,
    google_email,
    google_phone,
    hashed_identifiers,
    meta_email,
    meta_phone,
    sha256_hex,
)
from mos_pipelines.activation.retry import RateLimiter, backoff_seconds, is_retryable, retry_after_seconds
from mos_pipelines.configuration import DOMAINS, ConfigError, load_activation
from mos_pipelines.configuration.activation import CopyTemplate

NOW = datetime.datetime(2026, 3, 1, 12, 0)


# -- hashing ---------------------------------------------------------------------------------------


def test_google_normalisation_and_hashes_match_the_published_examples():
    """Google's published examples, Data Manager API guide "Send audience members" (Prepare audience data:
    formatted, then hashed and hex-encoded), https://developers.google.com/data-manager/api/devguides/audiences/send-audience-members,
    and the normalisation examples of "Format user data",
    https://developers.google.com/data-manager/api/devguides/concepts/formatting."""
    published = {
        "dana@example.com": "07e2f1394b0ea80e2adca010ea8318df697001a005ba7452720edda4b0ce57b3",
        "DanaM@example.com": "1df6b43bc68dd38eca94e6a65b4f466ae537b796c81a526918b40ac4a7b906c7",
        "ALEXF@example.com": "19de0a9906ebee29fe82087be5ec44f3c01e40730bc808b663c71f19dd6b12f2",
        "cloudySanFrancisco@GMAIL.com": "223ebda6f6889b1494551ba902d9d381daf2f642bae055888e96343d53e9f9c4",
    }
    for raw, digest in published.items():
        assert sha256_hex(google_email(raw)) == digest, raw
    phones = {
        "+1-800-555-0100": "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30",
        "+1 800-555-0101": "61d6c2976b5d92b1ad63073a12fddd26040cd980067d03a93dd1cc50f1a3ac68",
        "+1-800-555-0110": "525c2390a4e2a9766fa8ddc341dd10414603baebefa401f5a5e29f55e176525d",
    }
    for raw, digest in phones.items():
        assert sha256_hex(google_phone(raw)) == digest, raw
    assert google_email("cloudy.sanfrancisco+shopping@gmail.com") == "cloudysanfrancisco@gmail.com"
    assert google_email("user.name+NYC@Example.com") == "user.name+nyc@example.com"
    assert google_phone("(800)555-0100", "US") == "+18005550100"


def test_meta_normalisation_and_hashes_match_the_published_examples():
    """Meta's published examples, Conversions API "Customer Information Parameters" (the same normalisation
    the Custom Audience "hashing and normalizing data" rules ask for: email trimmed and lower-cased, phone
    as digits with the country code),
    https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters."""
    assert meta_email(" John_Smith@gmail.com ") == "john_smith@gmail.com"
    assert (
        sha256_hex(meta_email("John_Smith@gmail.com"))
        == "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
    )
    assert meta_phone("(650)555-1212", "US") == "16505551212"
    assert (
        sha256_hex(meta_phone("(650)555-1212", "US"))
        == "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
    )
    # Meta keeps gmail dots and +tags; Google removes them
    assert (
        meta_email("J.Doe+x@gmail.com") == "j.doe+x@gmail.com" and google_email("J.Doe+x@gmail.com") == "jdoe@gmail.com"
    )
    assert meta_phone("0049 30 123456", "DE") == "4930123456"  # the international 00 prefix is no leading zero


def test_hashed_identifiers_hold_no_raw_value_and_skip_what_cannot_be_normalised():
    ids = hashed_identifiers("google", "Ann.Lee@Gmail.com", "+44 20 7946 0958", "GB")
    assert set(ids) == {"email_sha256", "phone_sha256"}
    assert all(len(v) == 64 and "@" not in v and "7946" not in v for v in ids.values())
    assert hashed_identifiers("meta", "not an address", "12", "US") == {}
    with pytest.raises(IdentifierError, match="not an email address"):
        google_email("@example.com")


# -- copy, guardrails, approvals -------------------------------------------------------------------

BUNDLED = load_activation(DOMAINS["activation"].file)  # whatever the environment says


def test_bundled_templates_that_state_a_discount_need_approval_and_the_others_do_not():
    claims = {}
    for variant in ("A", "B", "C"):
        _, template = BUNDLED.content.template_for("em_trial_nurture", variant)
        claims[variant] = content.numeric_claims(template.subject + "\n" + template.body)
    assert claims["A"] == [] and claims["C"] == []
    assert "20%" in claims["B"] and any(c.lower() == "save" for c in claims["B"])
    assert content.numeric_claims("Only $49 a month, 3 seats, promo code X") == ["$49", "3", "promo code"]
    assert content.numeric_claims("Hi {first_name} at {company}") == []


class ScriptedRenderer:
    """A renderer that returns fixed copy (a real CopyRenderer, as an LLM-backed one would be)."""

    name = "scripted"

    def __init__(self, subject: str, body: str) -> None:
        self.subject, self.body = subject, body

    def render(self, brief: content.CopyBrief) -> content.RenderedCopy:
        return content.RenderedCopy(self.subject, self.body, "scripted-model")


def _brief(subject="Hi {first_name}", body="Your trial at {company} ends soon.", facts=None) -> content.CopyBrief:
    return content.CopyBrief("camp", "A", None, "camp/A", CopyTemplate(subject=subject, body=body), facts or {})


def test_renderer_copy_with_an_invented_number_falls_back_to_the_template_flagged():
    invented = content.render_variant(_brief(), ScriptedRenderer("Hi {first_name}", "Save 50% before Friday."))
    assert (invented.renderer, invented.flagged) == ("static", True) and "50" in invented.reason
    assert invented.body == "Your trial at {company} ends soon."
    grounded = content.render_variant(
        _brief(facts={"discount_percent": 15}), ScriptedRenderer("{first_name}, 15% off", "Take 15% off at {company}.")
    )
    assert (grounded.renderer, grounded.flagged) == ("scripted-model", False)
    unknown_field = content.render_variant(_brief(), ScriptedRenderer("Hi {name}", "Body"))
    assert unknown_field.flagged and "unknown placeholders" in unknown_field.reason


def test_llm_renderer_reads_the_llm_layers_subject_line_format():
    class Generation:
        text, model, flagged, reason = (
            "Subject: A question, {first_name}\nHow is {company} doing?",
            "offline/x",
            False,
            None,
        )

    class Layer:
        def __init__(self):
            self.calls = []

        def generate(self, task, prompt_id, facts):
            self.calls.append((task, prompt_id, facts))
            return Generation()

    layer = Layer()
    copy = content.LlmCopyRenderer(layer).render(_brief())
    assert (copy.subject, copy.body, copy.renderer) == (
        "A question, {first_name}",
        "How is {company} doing?",
        "offline/x",
    )
    assert layer.calls[0][:2] == ("email_copy", "email.copy") and layer.calls[0][2]["variant_id"] == "A"


def _llm_layer(tmp_path: Path, con: duckdb.DuckDBPyConnection, email_model: str, extra: str = ""):
    from mos_pipelines.configuration import load_llm
    from mos_pipelines.llm import LLM, Ledger

    path = tmp_path / "llm.yaml"
    path.write_text(
        "defaults: {num_retries: 0, timeout_s: 5}\ntasks:\n"
        "  insight_phrasing: {model: mos-offline/insight-writer}\n"
        f"  email_copy: {{model: {email_model}{extra}}}\n"
        "  question_answering: {model: mos-offline/analyst}\n"
    )
    return LLM(load_llm(path), Ledger(con))


def test_offline_llm_copy_is_the_template_written_once_and_kept_with_its_call_in_the_ledger(tmp_path):
    con = duckdb.connect()
    renderer = content.LlmCopyRenderer(_llm_layer(tmp_path, con, "mos-offline/copywriter"))
    _, template = BUNDLED.content.template_for("em_trial_nurture", "B")
    brief = content.CopyBrief("em_trial_nurture", "B", None, "em_trial_nurture/B", template)
    first = content.kept_copy(con, brief, renderer, NOW)
    assert (first.subject, first.body.strip()) == (template.subject, template.body.strip())
    assert (first.renderer, first.flagged) == ("mos-offline/copywriter", False)
    again = content.kept_copy(con, brief, renderer, NOW + datetime.timedelta(days=1))
    assert again == first
    calls = con.sql("select task, prompt_id, outcome, cost_usd from ops.llm_calls").fetchall()
    assert calls == [("email_copy", "email.copy", "ok", 0.0)]  # the second run reused the kept copy
    kept = con.sql("select renderer_settings, renderer from activation.variant_copy").fetchall()
    assert kept[0][0].startswith("llm:mos-offline/copywriter:email.copy@") and len(kept) == 1


def test_llm_copy_inventing_a_price_is_rejected_logged_and_the_template_kept(tmp_path):
    con = duckdb.connect()
    invented = "Subject: {first_name}, 30% off today\\nOnly $49 a month for {company}."
    renderer = content.LlmCopyRenderer(
        _llm_layer(tmp_path, con, "gpt-4o-mini", f", extra: {{mock_response: '{invented}'}}")
    )
    brief = _brief(subject="Hi {first_name}", body="Your trial at {company} ends soon.")
    copy = content.kept_copy(con, brief, renderer, NOW)
    assert (copy.subject, copy.body, copy.flagged) == ("Hi {first_name}", "Your trial at {company} ends soon.", True)
    assert "gpt-4o-mini" in copy.reason
    ((outcome, detail, tokens_in, cost),) = con.sql(
        "select outcome, detail, tokens_in, cost_usd from ops.llm_calls"
    ).fetchall()
    assert outcome == "rejected" and "30" in detail and tokens_in > 0 and cost > 0
    assert content.numeric_claims(copy.subject + copy.body) == []  # nothing left to approve
    assert con.sql("select flagged from activation.variant_copy").fetchall() == [(True,)]


def test_changed_template_renders_new_copy(tmp_path):
    con = duckdb.connect()
    first = content.kept_copy(con, _brief(body="Version one at {company}."), content.StaticRenderer(), NOW)
    second = content.kept_copy(con, _brief(body="Version two at {company}."), content.StaticRenderer(), NOW)
    assert (first.body, second.body) == ("Version one at {company}.", "Version two at {company}.")
    assert con.sql("select count(*) from activation.variant_copy").fetchall() == [(2,)]


def test_personalise_fills_names_and_uses_neutral_words_when_unknown():
    assert (
        content.personalise("Hi {first_name} at {company}", {"first_name": "Ana", "company": None})
        == "Hi Ana at your team"
    )


def test_approval_queue_holds_copy_until_a_person_decides_once():
    con = duckdb.connect()
    brief = _brief(subject="20% off", body="Save 20% now")
    copy = content.StaticRenderer().render(brief)
    key, status = content.request_approval(con, brief, copy, ["20%"], NOW)
    assert status == "pending" and content.request_approval(con, brief, copy, ["20%"], NOW) == (key, "pending")
    assert content.list_approvals(con, "pending")["approval_id"].tolist() == [key]
    content.decide(con, key, "approved", "ana", "checked with pricing", NOW)
    assert content.request_approval(con, brief, copy, ["20%"], NOW) == (key, "approved")
    with pytest.raises(content.ApprovalError, match="already approved"):
        content.decide(con, key, "rejected", "bo", None, NOW)
    with pytest.raises(content.ApprovalError, match="no approval 'nope'"):
        content.decide(con, "nope", "approved", "bo", None, NOW)
    changed = content.StaticRenderer().render(_brief(subject="25% off", body="Save 25% now"))
    assert content.approval_id("camp", "A", changed) != key  # changed copy needs its own approval


# -- messages --------------------------------------------------------------------------------------


def _change(payload: dict, key: str = "k" * 32) -> ledger.Change:
    return ledger.Change("c1", "c1", "upsert", payload, ledger.payload_hash(payload), key, 0)


def test_email_message_id_comes_from_the_idempotency_key_with_unsubscribe_headers():
    settings = BUNDLED.email.model_copy(update={"unsubscribe_url": "https://x.example/u?token={token}"})
    payload = {
        "to": "a@b.example",
        "subject": "Hi",
        "body": "Text",
        "campaign_id": "camp",
        "variant_id": "A",
        "unsubscribe_token": "tok123",
    }
    msg = email.message_from_bytes(build_message(_change(payload, "ab" * 16), settings).as_bytes())
    assert msg["Message-ID"] == f"<{'ab' * 16}@mos-pipelines.example>"
    assert msg["List-Unsubscribe"] == (
        "<https://x.example/u?token=tok123>, <mailto:unsubscribe@mos-pipelines.example?subject=unsubscribe-tok123>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["X-MOS-Variant"] == "A"


def test_slack_message_is_incoming_webhook_json_with_the_notification():
    message = slack_message(
        {
            "notification_id": "n1",
            "title": "Lookalike degraded",
            "message": "AUC fell.",
            "severity": "warning",
            "metric": "auc",
            "figure": 0.61,
            "previous_figure": 0.74,
            "suggested_action": "Check the seed.",
            "notification_source": "lookalike",
        }
    )
    assert message["text"].startswith(":warning: Lookalike degraded")
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds == ["header", "section", "section", "section", "context"]
    assert "0.61" in json.dumps(message) and "0.74" in json.dumps(message)


# -- the ledger ------------------------------------------------------------------------------------


def _prepared(key: str, value: str) -> ledger.Prepared:
    payload = {"v": value}
    return ledger.Prepared(key, key, payload, ledger.payload_hash(payload), remove_payload={"id": value})


def _sync(con, desired: dict[str, str], frozen=frozenset()) -> ledger.Diff:
    """Diff, write as pending, and acknowledge every change (a delivery that succeeds)."""
    diff = ledger.diff("d", {k: _prepared(k, v) for k, v in desired.items()}, ledger.load(con, "d"), set(frozen))
    ledger.write_pending(con, "d", diff.changes, "run", NOW)
    ledger.cancel(con, "d", diff.cancelled, NOW)
    ledger.mark_in_flight(con, "d", [c.record_key for c in diff.changes], "run", NOW)
    ledger.acknowledge(con, "d", [c.record_key for c in diff.changes], NOW)
    return diff


def test_ledger_sends_only_additions_changes_and_removals_with_a_new_key_per_change():
    con = duckdb.connect()
    ledger.ensure_tables(con)
    first = _sync(con, {"a": "1", "b": "1", "c": "1"})
    assert sorted((c.record_key, c.operation) for c in first.changes) == [
        ("a", "upsert"),
        ("b", "upsert"),
        ("c", "upsert"),
    ]
    assert _sync(con, {"a": "1", "b": "1", "c": "1"}).changes == []  # unchanged: nothing
    second = _sync(con, {"a": "2", "b": "1"})  # a changed, c removed
    assert sorted((c.record_key, c.operation) for c in second.changes) == [("a", "upsert"), ("c", "remove")]
    removal = next(c for c in second.changes if c.operation == "remove")
    assert removal.remove_payload == {"id": "1"}  # what the destination holds, to remove it
    back = _sync(con, {"a": "2", "b": "1", "c": "1"})  # c comes back with its old payload
    keys = [c.idempotency_key for c in first.changes + second.changes + back.changes]
    assert len(keys) == len(set(keys))  # re-adding the same payload is a new change with a new key
    rows = ledger.load(con, "d")
    assert {k: (r["status"], r["is_present"], r["change_seq"]) for k, r in rows.items()} == {
        "a": ("acknowledged", True, 2),
        "b": ("acknowledged", True, 1),
        "c": ("acknowledged", True, 3),
    }


def test_open_changes_resume_with_their_key_and_stuck_ones_wait():
    con = duckdb.connect()
    ledger.ensure_tables(con)
    _sync(con, {"a": "1", "b": "1", "c": "1", "d": "1"})
    diff = ledger.diff("d", {k: _prepared(k, "2") for k in "abcd"}, ledger.load(con, "d"))
    ledger.write_pending(con, "d", diff.changes, "run", NOW)
    keys = {c.record_key: c.idempotency_key for c in diff.changes}
    ledger.mark_in_flight(con, "d", ["a", "b", "c"], "run", NOW)
    ledger.set_status(con, "d", ["b"], "dead_letter", NOW, {"b": "HTTP 500"})
    ledger.set_status(con, "d", ["c"], "unknown", NOW)
    again = ledger.diff("d", {k: _prepared(k, "2") for k in "abcd"}, ledger.load(con, "d"))
    assert {c.record_key: c.idempotency_key for c in again.changes} == {"d": keys["d"]}  # pending: same key
    assert again.stuck == {"in_flight": 1, "dead_letter": 1, "unknown": 1}
    # the destination already holds what is wanted again: the open change is cancelled, nothing is sent
    back = ledger.diff("d", {"d": _prepared("d", "1")}, ledger.load(con, "d"))
    assert back.cancelled == ["d"] and all(c.record_key != "d" for c in back.changes)
    assert ledger.requeue(con, "d", ("dead_letter", "unknown"), NOW) == 2
    assert {r["status"] for k, r in ledger.load(con, "d").items() if k in "bc"} == {"pending"}


def test_frozen_records_are_neither_updated_nor_removed():
    con = duckdb.connect()
    ledger.ensure_tables(con)
    _sync(con, {"a": "1", "b": "1"})
    diff = ledger.diff("d", {"a": _prepared("a", "2")}, ledger.load(con, "d"), {"a", "b"})
    assert diff.changes == [] and diff.cancelled == []


# -- retries ---------------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_bounded_jitter_and_is_reproducible():
    settings = BUNDLED.retry.model_copy(update={"backoff_base_seconds": 1.0, "backoff_max_seconds": 8.0, "jitter": 0.5})
    for attempt, full in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 8.0)):
        wait = backoff_seconds(settings, attempt, "key")
        assert full / 2 <= wait <= full
        assert wait == backoff_seconds(settings, attempt, "key")
    assert backoff_seconds(settings, 3, "key") != backoff_seconds(settings, 3, "other")


def test_retry_after_and_retryable_codes():
    assert retry_after_seconds("1") == 1.0 and retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert retry_after_seconds("soon") is None
    assert [is_retryable(c) for c in (None, 408, 429, 500, 503, 400, 401, 404, 422)] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]


def test_rate_limiter_spaces_calls_evenly():
    clock, slept = [0.0], []

    def sleep(seconds):
        slept.append(round(seconds, 6))
        clock[0] += seconds

    limiter = RateLimiter(4, clock=lambda: clock[0], sleep=sleep)
    for _ in range(3):
        limiter.wait()
    assert slept == [0.25, 0.25]


# -- config ----------------------------------------------------------------------------------------


def _config(tmp_path: Path, change) -> Path:
    """The bundled file with a change, as an override file (merged over the bundled one)."""
    data = yaml.safe_load(DOMAINS["activation"].file.read_text())
    change(data)
    path = tmp_path / "activation.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "change, key, expected",
    [
        (
            lambda d: d["destinations"]["email__nurture"].update(colour="red"),
            "destinations.email__nurture.colour",
            "one of the keys channel, sync_model",
        ),
        (
            lambda d: d["destinations"]["email__nurture"].update(channel="carrier_pigeon"),
            "destinations.email__nurture.channel",
            "one of email, webhook, google_customer_match, meta_custom_audience, slack",
        ),
        (
            lambda d: d["destinations"]["crm__lifecycle_stages"].pop("url_env"),
            "destinations.crm__lifecycle_stages.url_env",
            "`url` or `url_env`",
        ),
        (
            lambda d: d["destinations"]["email__nurture"].update(sync_model="nurture"),
            "destinations.email__nurture.sync_model",
            "schema.table",
        ),
        (
            lambda d: d["destinations"]["email__nurture"].update(sync_model="activation.sync_fax"),
            "destinations.email__nurture.sync_model",
            "a sync model declared under sync_models",
        ),
        (
            lambda d: d["sync_models"]["sync_email__nurture"].update(campaign_id=None),
            "sync_models.sync_email__nurture.campaign_id",
            "a value: models/activation/sync_email__nurture.sql reads it",
        ),
        (lambda d: d["channels"].update(fax={"enabled": True}), "channels.fax", "one of email, webhook"),
        (lambda d: d["retry"].update(max_attempts=0), "retry.max_attempts", "a number >= 1"),
    ],
)
def test_config_errors_name_the_file_the_key_and_what_was_expected(tmp_path, change, key, expected):
    with pytest.raises(ConfigError) as error:
        load_activation(_config(tmp_path, change))
    assert (error.value.file, error.value.key) == (str(tmp_path / "activation.yaml"), key)
    assert error.value.expected.startswith(expected), error.value.expected


def test_kill_switch_and_missing_copy_are_reported(tmp_path):
    config = load_activation(_config(tmp_path, lambda d: d["channels"]["email"].update(enabled=False)))
    assert not config.enabled("email") and config.enabled("slack")
    without_default = load_activation(_config(tmp_path, lambda d: d["content"]["templates"].pop("default")))
    with pytest.raises(ConfigError) as error:
        without_default.content.template_for("x", "y")
    assert error.value.key == "content.templates.x.y" and "campaign 'x' variant 'y'" in error.value.expected


def test_each_destination_checks_the_consent_purpose_of_its_sync_model():
    """The purpose is declared once per sync model; both ad destinations read one sync model and so one purpose."""
    purposes = {name: d.consent_purpose for name, d in BUNDLED.destinations.items()}
    assert purposes == {
        "email__nurture": "email_marketing",
        "crm__lifecycle_stages": "email_marketing",
        "google_ads__audiences": "ad_personalization",
        "meta_ads__audiences": "ad_personalization",
        "slack__top_notifications": None,
    }
