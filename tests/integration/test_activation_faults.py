"""Activation against real local servers (aiosmtpd, http.server on 127.0.0.1) and a real DuckDB file:
the faults reverse-ETL tools are known for, measured.

- a delivery of 1,000 emails killed (SIGKILL) at random points at least 5 times, then re-run: the SMTP
  server holds each message exactly once;
- a webhook answering 500, 500, 429 (Retry-After: 1), 200: one delivery, one idempotency key, waits
  that respect the backoff and Retry-After; a permanent 500 and a 400 end as dead letters while the
  other rows deliver, at the configured rate;
- consent revoked for 50 of 1,000 between scoring and send: no message to them, 50 audit rows saying
  why, and the next ad-audience sync removes them;
- an unchanged re-run sends nothing; 10 changed rows send exactly 10 updates;
- audience exports hold no raw email or phone.

The sync models are tables written here (the dbt models are tested in test_activation.py): the engine
reads any table with the contract's columns.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from mos_pipelines.activation.delivery import deliver
from mos_pipelines.activation.hashing import google_email, google_phone, meta_email, meta_phone, sha256_hex
from mos_pipelines.activation.retry import backoff_seconds
from mos_pipelines.configuration import load_activation as load_config
from mos_pipelines.settings import PROJECT_ROOT
from tests.activation_servers import SmtpServer, WebhookServer

pytestmark = pytest.mark.integration

N = 1000
FAST_RETRY = {
    "max_attempts": 5,
    "backoff_base_seconds": 0.05,
    "backoff_max_seconds": 0.4,
    "jitter": 0.5,
    "max_retry_after_seconds": 5,
}
TEMPLATES = {"camp": {"A": {"subject": "Hello {first_name}", "body": "Hi {first_name}, a note for {company}."}}}


def customer(i: int) -> str:
    return f"cus_{i:04d}"


def make_warehouse(home: Path, n: int = N) -> Path:
    """Sync tables for an email, a CRM webhook and an ad-audience destination, and consent for all."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists activation; create schema if not exists marts")
        con.execute(f"""
            create table activation.sync_email__test as
            select 'cus_' || lpad(i::varchar, 4, '0') as customer_id, 'Person.' || i || '@Example.org' as email_address,
                   'camp' as campaign_id, 'A' as variant_id, 'Name' || i as first_name, 'Firm ' || (i % 7) as company
            from range({n}) as t(i)""")
        con.execute(f"""
            create table activation.sync_crm__test as
            select 'cus_' || lpad(i::varchar, 4, '0') as customer_id, 'person' || i || '@example.org' as email_address,
                   'lead' as lifecycle_stage
            from range({n}) as t(i)""")
        con.execute(f"""
            create table activation.sync_ads__test as
            select 'customers:cus_' || lpad(i::varchar, 4, '0') as audience_member_id, 'customers' as audience_name,
                   'cus_' || lpad(i::varchar, 4, '0') as customer_id, 'Person.' || i || '@Gmail.com' as email_address,
                   '+1415555' || lpad(i::varchar, 4, '0') as phone_e164, 'US' as country_code
            from range({n}) as t(i)""")
        con.execute(f"""
            create table marts.dim_customer_consents as
            select 'cus_' || lpad(i::varchar, 4, '0') as customer_id, purpose, 'granted' as status
            from range({n}) as t(i), (values ('email_marketing'), ('ad_personalization')) as p(purpose)""")
    return path


# The test sync tables and the consent purpose each selects for (merged into the bundled sync models).
SYNC_MODELS = {
    "sync_email__test": {"consent_purpose": "email_marketing"},
    "sync_crm__test": {"consent_purpose": "email_marketing"},
    "sync_ads__test": {"consent_purpose": "ad_personalization"},
}


def write_config(path: Path, destinations: dict, **extra) -> Path:
    config = {
        "retry": FAST_RETRY,
        "content": {"templates": TEMPLATES},
        "sync_models": SYNC_MODELS,
        "destinations": destinations,
        **extra,
    }
    path.write_text(yaml.safe_dump(config))
    return path


EMAIL = {"channel": "email", "sync_model": "activation.sync_email__test", "record_key": "customer_id"}
ADS = {"sync_model": "activation.sync_ads__test", "record_key": "audience_member_id"}


def smtp_env(server: SmtpServer, maildir: Path) -> dict[str, str]:
    return {"MOS_SMTP_HOST": "127.0.0.1", "MOS_SMTP_PORT": str(server.port), "MOS_SMTP_JOURNAL_MAILDIR": str(maildir)}


# -- crash mid-send --------------------------------------------------------------------------------


def test_crash_mid_send_killed_at_random_points_delivers_each_of_1000_messages_once(tmp_path):
    home, maildir = tmp_path / "home", tmp_path / "maildir"
    make_warehouse(home)
    # 200 messages/s: a run takes seconds, so kills land while it sends; batches of 20 between commits
    config = write_config(
        tmp_path / "activation.yaml",
        {"email__test": {**EMAIL, "rate_limit_per_second": 200, "batch_size": 20}},
        email={"sink": "smtp"},
    )
    rng = random.Random(20261122)
    with SmtpServer(maildir) as server:
        env = {**os.environ, **smtp_env(server, maildir), "MOS_HOME": str(home), "MOS_ACTIVATION_CONFIG": str(config)}
        command = [sys.executable, "-m", "mos_pipelines.activation", "--destination", "email__test"]
        kills, runs = 0, 0
        while kills < 6 and runs < 20:
            runs += 1
            before = server.count()
            process = subprocess.Popen(
                command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            deadline = time.monotonic() + 60
            if runs % 3 == 0:  # now and then anywhere after start: imports, reconciliation, the first batch
                time.sleep(rng.uniform(0.2, 2.0))
            else:  # otherwise once this run is sending, somewhere in the middle of a batch
                while server.count() == before and process.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.6))
            if process.poll() is not None:
                continue  # it finished (or failed) before the kill
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        assert kills >= 5, f"only {kills} kills landed in {runs} runs"
        sent_before_final = server.count()
        final = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        messages = server.messages()
    ids = [m["Message-ID"] for m in messages]
    recipients = [m["To"].lower() for m in messages]
    assert 0 < sent_before_final < N  # the kills interrupted the delivery, the last run finished it
    assert len(messages) == N
    assert len(set(ids)) == N and len(set(recipients)) == N  # 0 duplicates
    # the override sets no unsubscribe_url: the bundled one applies (one-click URL, then mailto)
    assert all("<mailto:unsubscribe@" in m["List-Unsubscribe"] and m["List-Unsubscribe-Post"] for m in messages)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        statuses = dict(con.execute("select status, count(*) from ops.activation_ledger group by 1").fetchall())
        keys = {
            r[0]
            for r in con.execute(
                "select '<' || idempotency_key || '@mos-pipelines.example>' from ops.activation_ledger"
            ).fetchall()
        }
        reconciled = dict(
            con.execute(
                "select status, count(*) from ops.activation_attempts where status like 'reconciled%' group by 1"
            ).fetchall()
        )
    print(
        f"crash test: {kills} kills in {runs} runs, {sent_before_final} messages before the final run, "
        f"reconciled {reconciled}, {len(messages)} messages / {len(set(ids))} distinct on the server"
    )
    assert statuses == {"acknowledged": N}
    assert keys == set(ids)  # every Message-ID is the ledger's idempotency key of its recipient
    assert sum(reconciled.values()) > 0  # some kill left messages in flight, and they were looked up, not resent


# -- webhook retries -------------------------------------------------------------------------------


def test_webhook_retries_500_500_429_then_200_deliver_once_with_one_key_and_respect_the_waits(tmp_path):
    home = tmp_path / "home"
    make_warehouse(home, n=1)
    answers = {1: (500, {}), 2: (500, {}), 3: (429, {"Retry-After": "1"}), 4: (200, {})}
    with WebhookServer(lambda request, number: answers[number]) as server:
        config = load_config(
            write_config(
                tmp_path / "a.yaml",
                {
                    "crm__test": {
                        "channel": "webhook",
                        "sync_model": "activation.sync_crm__test",
                        "record_key": "customer_id",
                        "url": server.url,
                    }
                },
            )
        )
        with duckdb.connect(str(home / "warehouse.duckdb")) as con:
            report = deliver(con, "crm__test", config, home, "run-1")
            again = deliver(con, "crm__test", config, home, "run-2")
            ledger = con.execute("select status, attempts, idempotency_key from ops.activation_ledger").fetchall()
            audit = con.execute(
                "select attempt, response_code, status from ops.activation_attempts "
                "where run_id = 'run-1' order by attempt"
            ).fetchall()
        requests = list(server.requests)
    assert report.acknowledged == 1 and report.attempts == 4
    assert again.changes == 0 and len(requests) == 4  # delivered once; the re-run sent nothing
    keys = {r.headers["idempotency-key"] for r in requests}
    assert keys == {ledger[0][2]} and ledger[0][:2] == ("acknowledged", 4)
    assert all(r.body["record_key"] == "cus_0000" and r.body["operation"] == "upsert" for r in requests)
    retry = config.retry
    gaps = [b.at - a.at for a, b in zip(requests, requests[1:])]
    assert gaps[0] >= backoff_seconds(retry, 1, ledger[0][2])  # backoff after the first 500
    assert gaps[1] >= backoff_seconds(retry, 2, ledger[0][2])  # longer after the second
    assert gaps[2] >= 1.0  # Retry-After: 1 honoured
    assert audit == [(1, 500, "retry"), (2, 500, "retry"), (3, 429, "retry"), (4, 200, "acknowledged")]


def test_permanent_500_and_a_400_become_dead_letters_while_the_other_rows_deliver_at_the_rate_limit(tmp_path):
    home = tmp_path / "home"
    make_warehouse(home, n=12)

    def respond(request, number):
        key = request.body["record_key"]
        return {"cus_0003": (500, {}), "cus_0007": (400, {})}.get(key, (200, {}))

    with WebhookServer(respond) as server:
        config = load_config(
            write_config(
                tmp_path / "a.yaml",
                {
                    "crm__test": {
                        "channel": "webhook",
                        "sync_model": "activation.sync_crm__test",
                        "record_key": "customer_id",
                        "url": server.url,
                        "rate_limit_per_second": 20,
                    }
                },
                retry={**FAST_RETRY, "max_attempts": 3},
            )
        )
        with duckdb.connect(str(home / "warehouse.duckdb")) as con:
            report = deliver(con, "crm__test", config, home, "run-1")
            rerun = deliver(con, "crm__test", config, home, "run-2")
            ledger = dict(con.execute("select record_key, status from ops.activation_ledger").fetchall())
            errors = dict(
                con.execute(
                    "select record_key, last_error from ops.activation_ledger where status = 'dead_letter'"
                ).fetchall()
            )
        requests = list(server.requests)
    per_record = {}
    for r in requests:
        per_record[r.body["record_key"]] = per_record.get(r.body["record_key"], 0) + 1
    assert per_record.pop("cus_0003") == 3  # N = 3 attempts, then dead letter
    assert per_record.pop("cus_0007") == 1  # a 400 is not retried
    assert per_record == {customer(i): 1 for i in range(12) if i not in (3, 7)}
    assert ledger.pop("cus_0003") == "dead_letter" and ledger.pop("cus_0007") == "dead_letter"
    assert set(ledger.values()) == {"acknowledged"}
    assert "HTTP 500" in errors["cus_0003"] and "HTTP 400" in errors["cus_0007"]
    assert report.dead_letter == 2 and report.acknowledged == 10
    assert rerun.changes == 0 and rerun.waiting == {"dead_letter": 2} and len(requests) == 14  # not retried blindly
    # 20 requests/s: the 14 requests start at least 13/20 s apart in all (the server's clock may see the
    # first one late by a scheduling delay, allowed 0.1 s; without the limit they took ~0.15 s)
    assert requests[-1].at - requests[0].at >= 13 / 20 - 0.1


# -- consent at send time --------------------------------------------------------------------------


def exported_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_consent_revoked_between_scoring_and_send_blocks_50_of_1000_and_the_next_audience_sync_removes_them(tmp_path):
    home, maildir = tmp_path / "home", tmp_path / "maildir"
    make_warehouse(home)
    config_path = write_config(
        tmp_path / "a.yaml",
        {
            "email__test": {**EMAIL, "batch_size": 100},
            "google__test": {**ADS, "channel": "google_customer_match"},
            "meta__test": {**ADS, "channel": "meta_custom_audience"},
        },
        email={"sink": "smtp"},
    )
    config = load_config(config_path)
    revoked = [customer(i) for i in range(0, N, 20)]  # 50 customers
    with SmtpServer(maildir) as server:
        os.environ.update(smtp_env(server, maildir))
        try:
            with duckdb.connect(str(home / "warehouse.duckdb")) as con:
                first = {d: deliver(con, d, config, home, "scored") for d in ("google__test", "meta__test")}
                con.execute(
                    "update marts.dim_customer_consents set status = 'revoked' where customer_id in (select unnest(?))",
                    [revoked],
                )
                email = deliver(con, "email__test", config, home, "send")
                second = {d: deliver(con, d, config, home, "next-sync") for d in ("google__test", "meta__test")}
                audit = con.execute(
                    "select record_key, reason from ops.activation_attempts "
                    "where run_id = 'send' and status = 'blocked_consent'"
                ).fetchall()
                present = dict(
                    con.execute(
                        "select destination, count(*) filter (where is_present) from ops.activation_ledger group by 1"
                    ).fetchall()
                )
        finally:
            for key in smtp_env(server, maildir):
                os.environ.pop(key)
        recipients = {m["To"].lower() for m in server.messages()}
    revoked_addresses = {f"person.{int(c[4:])}@example.org" for c in revoked}
    assert len(recipients) == N - 50 and not recipients & revoked_addresses
    assert email.blocked_consent == 50 and sorted(k for k, _ in audit) == sorted(revoked)
    assert all("email_marketing" in reason and "revoked" in reason for _, reason in audit)
    for destination in ("google__test", "meta__test"):
        assert first[destination].upserts == N
        assert second[destination].removes == 50 and second[destination].upserts == 0
        assert second[destination].blocked_consent == 50
    assert present == {"email__test": N - 50, "google__test": N - 50, "meta__test": N - 50}
    # the removal files list exactly the revoked customers' hashed identifiers
    google_removed = (home / "activation/audiences/google__test/customers").glob("*__remove.csv")
    rows = [line.split(",") for path in google_removed for line in path.read_text().splitlines()[1:]]
    expected = {
        (
            sha256_hex(google_email(f"Person.{int(c[4:])}@Gmail.com")),
            sha256_hex(google_phone(f"+1415555{int(c[4:]):04d}")),
        )
        for c in revoked
    }
    assert {tuple(r) for r in rows} == expected
    meta_removed = next((home / "activation/audiences/meta__test/customers").glob("*__remove.json"))
    data = json.loads(meta_removed.read_text())["payload"]
    assert data["schema"] == ["EMAIL", "PHONE"]
    assert {tuple(r) for r in data["data"]} == {
        (sha256_hex(meta_email(f"Person.{int(c[4:])}@Gmail.com")), sha256_hex(meta_phone(f"+1415555{int(c[4:]):04d}")))
        for c in revoked
    }
    # no raw email or phone in any export
    for path in exported_files(home / "activation" / "audiences"):
        text = path.read_text()
        assert "@" not in text and "+1415555" not in text and "1415555" not in text, path


# -- change detection ------------------------------------------------------------------------------


def test_unchanged_rerun_sends_nothing_and_10_changed_rows_send_exactly_10_updates(tmp_path):
    home = tmp_path / "home"
    make_warehouse(home, n=200)
    with WebhookServer() as server:
        config = load_config(
            write_config(
                tmp_path / "a.yaml",
                {
                    "crm__test": {
                        "channel": "webhook",
                        "sync_model": "activation.sync_crm__test",
                        "record_key": "customer_id",
                        "url": server.url,
                    },
                    "google__test": {**ADS, "channel": "google_customer_match"},
                },
            )
        )
        with duckdb.connect(str(home / "warehouse.duckdb")) as con:
            first = deliver(con, "crm__test", config, home, "r1")
            deliver(con, "google__test", config, home, "r1")
            after_first = len(server.requests)
            unchanged = deliver(con, "crm__test", config, home, "r2")
            unchanged_ads = deliver(con, "google__test", config, home, "r2")
            after_unchanged = len(server.requests)
            changed = [customer(i) for i in range(5, 200, 20)]  # 10 rows
            con.execute(
                "update activation.sync_crm__test set lifecycle_stage = 'mql' where customer_id in (select unnest(?))",
                [changed],
            )
            con.execute(
                "update activation.sync_ads__test set phone_e164 = '+1415666' || right(customer_id, 4) "
                "where customer_id in (select unnest(?))",
                [changed],
            )
            updated = deliver(con, "crm__test", config, home, "r3")
            updated_ads = deliver(con, "google__test", config, home, "r3")
        requests = server.requests[after_unchanged:]
    assert first.acknowledged == 200 and after_first == 200
    assert unchanged.changes == 0 and unchanged_ads.changes == 0 and after_unchanged == after_first  # 0 sends
    assert updated.changes == 10 and len(requests) == 10
    assert sorted(r.body["record_key"] for r in requests) == sorted(changed)
    assert all(r.body["data"]["lifecycle_stage"] == "mql" for r in requests)
    assert updated_ads.upserts == 10 and updated_ads.removes == 0
    add = next(
        p
        for p in (home / "activation/audiences/google__test/customers").glob("*__add.csv")
        if len(p.read_text().splitlines()) == 11
    )
    assert len(add.read_text().splitlines()) == 11  # header + the 10 members with their new phone
