"""The web app's rules on a small hand-made warehouse (real DuckDB tables written by the project's own functions,
FastAPI's TestClient): sign-in, sessions, 401/403, CSRF, feedback and the next ranking, approvals by role, PII
masks, a warehouse held by another process, and `mos serve` refusing a public address. The pages on a generated
world and the browser scenarios are tests/integration/test_web_app.py."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from mos_pipelines.activation import content
from mos_pipelines.configuration import load_insights
from mos_pipelines.configuration.activation import CopyTemplate
from mos_pipelines.insights import insight_tables
from mos_pipelines.insights.notify import notify
from mos_pipelines.settings import Settings
from mos_pipelines.web import data
from mos_pipelines.web.app import WebSettings, create_app

TOKENS = {
    "MOS_TOKEN_PERFORMANCE_MARKETER": "pm-token-1",
    "MOS_TOKEN_LIFECYCLE_MARKETER": "lm-token-1",
    "MOS_TOKEN_ANALYST": "an-token-1",
    "MOS_TOKEN_ADMIN": "ad-token-1",
}
RUN = datetime.datetime(2026, 12, 1, 6, 0, tzinfo=datetime.UTC)


def _insight(insight_id: str, insight_type: str, impact: float, channel: str, objective: str, rows: list[dict]) -> dict:
    evidence = {
        "key": f"{insight_type}|{channel}",
        "subject": {"metric": "signups", "channel": channel},
        "summary": [{"arm": "paid_social", "signups": 40}, {"arm": "others", "signups": 25}],
        "rows": rows,
        "metric_query": {
            "metrics": ["signups"],
            "group_by": ["channel"],
            "sql": "select channel, sum(signups) from marts.fct_channel_performance group by 1",
            "mf_command": "mf query --metrics signups --group-by channel",
        },
    }
    return {
        "insight_id": insight_id,
        "insight_type": insight_type,
        "statement": f"{insight_type} statement {insight_id}",
        "call_to_action": "Move budget to paid social",
        "objective": objective,
        "hypothesis": "h",
        "effect_size": 0.3,
        "ci_low": 0.1,
        "ci_high": 0.5,
        "p_value": 0.001,
        "q_value": 0.01,
        "impact_usd": impact,
        "evidence": json.dumps(evidence),
        "status": "accepted",
        "created_at": RUN,
    }


@pytest.fixture()
def home(tmp_path: Path) -> Settings:
    """Two insights of different types (A worth more than B; A about paid social, B about email), notified to the
    readers of config/insights.yaml by the real ranking, and one copy held for approval."""
    settings = Settings(mos_home=tmp_path / "home")
    settings.mos_home.mkdir()
    rows = [{"channel": "paid_social", "email": "ada@example.com", "signups": 40}]
    with duckdb.connect(str(settings.warehouse_path)) as con:
        insight_tables.ensure_tables(con)
        for ins in (
            _insight("ins_a", "channel_comparison", 1000.0, "paid_social", "acquisition", rows),
            _insight("ins_b", "anomaly", 800.0, "email", "conversion", []),
        ):
            names = list(ins)
            con.execute(
                f"insert into insights.insights ({', '.join(names)}) values ({', '.join('?' for _ in names)})",
                [ins[n] for n in names],
            )
        notify(con, load_insights(), now=RUN)
        template = CopyTemplate(subject="Save 20%", body="20% off this month")
        brief = content.CopyBrief("welcome", "B", "discount", "discount", template)
        copy = content.RenderedCopy("Save 20%", "Hi {first_name}, 20% off this month", "static")
        content.request_approval(con, brief, copy, ["20%"], RUN.replace(tzinfo=None))
    return settings


@pytest.fixture()
def client(home: Settings, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    for key, value in TOKENS.items():
        monkeypatch.setenv(key, value)
    return TestClient(create_app(home, WebSettings(secret=b"k" * 32, wait_seconds=0.5)))


def sign_in(client: TestClient, token: str) -> str:
    """Sign in through the form; returns the page's CSRF token."""
    response = client.post("/login", data={"token": token, "next": "/notifications"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/notifications"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("samesite", "SameSite")
    page = client.get("/notifications")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def feedback_rows(home: Settings) -> list[tuple]:
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        return con.execute("select notification_id, reader_id, verdict from insights.feedback").fetchall()


def test_no_or_bad_credentials_are_401_and_a_signed_in_user_sees_the_hub(client: TestClient):
    page = client.get("/")
    assert page.status_code == 401 and 'name="token"' in page.text  # the sign-in form
    assert client.get("/", headers={"accept": "application/json"}).json()["status"] == 401
    bad = client.get("/", headers={"authorization": "Bearer nope"})
    assert bad.status_code == 401 and "Unknown token" in bad.json()["error"]
    wrong = client.post("/login", data={"token": "nope"})
    assert wrong.status_code == 401 and "Unknown token" in wrong.text
    hub = client.get("/", headers={"authorization": "Bearer pm-token-1"})
    assert hub.status_code == 200
    assert hub.text.index("statement ins_a") < hub.text.index("statement ins_b")  # ranked by impact × confidence
    assert "http://127.0.0.1:3000/assets/marts/fct_channel_performance" in hub.text


def test_session_cookie_is_signed_expires_with_a_changed_token_and_forms_need_csrf(
    client: TestClient, home: Settings, monkeypatch: pytest.MonkeyPatch
):
    csrf = sign_in(client, "pm-token-1")
    cookie = client.cookies.get("mos_session")
    user, issued, digest, signature = cookie.split(".")
    # the jar holds the server's cookie under its domain: replace it, not add a second one beside it
    client.cookies.clear()
    client.cookies.set("mos_session", f"admin.{issued}.{digest}.{signature}")  # another user, same signature
    assert client.get("/notifications").status_code == 401
    client.cookies.clear()
    client.cookies.set("mos_session", cookie)
    (notification_id,) = re.findall(
        r'id="notification-([0-9a-f]+)" data-insight="ins_a"', client.get("/notifications").text
    )
    url = f"/notifications/{notification_id}/feedback"
    assert client.post(url, data={"verdict": "useful"}).status_code == 403  # no CSRF token
    assert client.post(url, data={"verdict": "useful", "csrf": csrf[:-2] + "xx"}).status_code == 403
    assert feedback_rows(home) == []
    done = client.post(url, data={"verdict": "useful", "csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert feedback_rows(home) == [(notification_id, "performance_marketer", "useful")]
    monkeypatch.setenv("MOS_TOKEN_PERFORMANCE_MARKETER", "pm-token-2")  # rotated: the session ends
    assert client.get("/notifications").status_code == 401


def test_not_useful_feedback_changes_the_next_ranking_through_the_notify_ranking(client: TestClient, home: Settings):
    csrf = sign_in(client, "pm-token-1")
    page = client.get("/notifications").text
    ranking = re.findall(r'<tr data-insight="(ins_\w)"><td class="n rank">(\d+)</td>', page)
    assert ranking == [("ins_a", "1"), ("ins_b", "2")]
    (notification_id,) = re.findall(r'id="notification-([0-9a-f]+)" data-insight="ins_a"', page)
    after = client.post(f"/notifications/{notification_id}/feedback", data={"verdict": "not_useful", "csrf": csrf})
    assert after.status_code == 200 and "Recorded “Not useful”" in after.text
    assert "Recorded" not in client.get("/notifications").text  # the outcome is shown once
    assert "crafted" not in client.get("/notifications?msg=crafted").text  # and never read from the URL
    assert re.findall(r'<tr data-insight="(ins_\w)"><td class="n rank">(\d+)</td>', after.text) == [
        ("ins_b", "1"),
        ("ins_a", "2"),
    ]
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:  # the same as the ranking function's
        rows = data.next_ranking(con, "performance_marketer")
    assert [(r["insight_id"], r["feedback_weight"]) for r in rows] == [("ins_b", 1.0), ("ins_a", 0.5)]


def test_feedback_for_another_reader_needs_the_permission(client: TestClient, home: Settings):
    csrf = sign_in(client, "pm-token-1")
    assert client.get("/notifications?reader=lifecycle_marketer").status_code == 403
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        (theirs,) = con.execute(
            "select notification_id from insights.notifications where reader_id = 'lifecycle_marketer' limit 1"
        ).fetchone()
    denied = client.post(
        f"/notifications/{theirs}/feedback",
        data={"verdict": "not_useful", "reader": "lifecycle_marketer", "csrf": csrf},
    )
    assert denied.status_code == 403 and feedback_rows(home) == []
    admin = {"authorization": "Bearer ad-token-1", "accept": "application/json"}
    assert client.get("/notifications?reader=lifecycle_marketer", headers=admin).status_code == 200
    given = client.post(
        f"/notifications/{theirs}/feedback",
        data={"verdict": "not_useful", "reader": "lifecycle_marketer"},
        headers=admin,
    )
    assert given.status_code == 200 and feedback_rows(home) == [(theirs, "lifecycle_marketer", "not_useful")]
    unknown = client.post("/notifications/nope/feedback", data={"verdict": "useful"}, headers=admin)
    assert unknown.status_code == 400 and "no notification with id 'nope'" in unknown.json()["error"]


def test_approving_copy_needs_approve_copy_and_is_recorded_with_who(client: TestClient, home: Settings):
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        (approval_id,) = con.execute("select approval_id from activation.approvals where status = 'pending'").fetchone()
    analyst = {"authorization": "Bearer an-token-1"}
    page = client.get("/approvals", headers=analyst)
    assert page.status_code == 200 and "may not approve copy" in page.text
    denied = client.post(f"/approvals/{approval_id}", data={"decision": "approved"}, headers=analyst)
    assert denied.status_code == 403 and "approve_copy" in denied.json()["error"]
    marketer = {"authorization": "Bearer pm-token-1", "accept": "application/json"}
    no_reason = client.post(f"/approvals/{approval_id}", data={"decision": "rejected"}, headers=marketer)
    assert no_reason.status_code == 400
    ok = client.post(f"/approvals/{approval_id}", data={"decision": "approved", "note": "pricing ok"}, headers=marketer)
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    again = client.post(f"/approvals/{approval_id}", data={"decision": "rejected", "note": "x"}, headers=marketer)
    assert again.status_code == 400 and "already approved" in again.json()["error"]
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        assert con.execute("select status, decided_by, note from activation.approvals").fetchall() == [
            ("approved", "performance_marketer", "pricing ok")
        ]


def test_evidence_rows_mask_pii_for_roles_without_see_pii(client: TestClient):
    marketer = client.get("/insights/ins_a", headers={"authorization": "Bearer pm-token-1"}).text
    analyst = client.get("/insights/ins_a", headers={"authorization": "Bearer an-token-1"}).text
    assert "a***@example.com" in marketer and "ada@example.com" not in marketer
    assert "ada@example.com" in analyst
    assert "marts.fct_channel_performance" in marketer and "mf query --metrics signups" in marketer
    assert data.pii_kind("email") == "email" and data.pii_kind("campaign_name") is None
    assert data.pii_kind("phone_e164") == "phone" and data.pii_kind("first_name") == "name"


def test_the_tables_a_query_reads_are_its_dagster_assets():
    sql = 'select * from "marts"."fct_channel_performance" m join ml.lookalike_scores s using (x) join marts.dim_x'
    assert data.asset_keys_in_sql(sql) == [
        ["marts", "fct_channel_performance"],
        ["ml", "lookalike_scores"],
        ["marts", "dim_x"],
    ]
    assert data.asset_keys_in_sql("select 1") == [] and data.asset_keys_in_sql(None) == []


def test_a_warehouse_held_by_a_run_gives_a_busy_page_not_a_500(client: TestClient, home: Settings):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(30)",
            str(home.warehouse_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        page = client.get("/", headers={"authorization": "Bearer pm-token-1"})
        waited = time.monotonic() - started
        assert page.status_code == 503 and "busy with a run; try again in a minute" in page.text
        assert waited >= 0.5  # it retried for the configured wait before giving up
        write = client.post(
            "/approvals/x", data={"decision": "approved"}, headers={"authorization": "Bearer ad-token-1"}
        )
        assert write.status_code == 503 and write.json()["error"].startswith("The warehouse is busy")
    finally:
        holder.kill()
        holder.wait()
    assert client.get("/", headers={"authorization": "Bearer pm-token-1"}).status_code == 200


def test_ask_page_says_when_the_assistant_is_not_installed(client: TestClient):
    try:
        import mos_pipelines.assistant  # noqa: F401
    except ImportError:
        page = client.get("/ask", headers={"authorization": "Bearer pm-token-1"})
        assert page.status_code == 200 and "The assistant is not installed" in page.text
    else:
        pytest.skip("the assistant is installed: tests/integration/test_web_app.py asks it through the browser")


def test_serve_refuses_a_public_address_without_public(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from typer.testing import CliRunner

    from mos_pipelines.cli import app
    from mos_pipelines.web.cli import is_loopback

    monkeypatch.setenv("MOS_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "not a loopback address" in result.output
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
    assert not is_loopback("10.1.2.3")
