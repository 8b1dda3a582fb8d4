"""The delivery checks the contact policy at send time: a send that would break a frequency cap or land in the
person's quiet hours is held (audited with the reasons), the others go out, and a later run sends what it held."""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import pytest

from mos_pipelines.activation import delivery, ledger
from mos_pipelines.configuration import DOMAINS, load_activation
from tests.unit.test_policy_change import NOW, build

CAPPED = "c006"  # Berlin: three acknowledged emails in the last 7 local days (cap 3)


@pytest.fixture(autouse=True)
def bundled_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DOMAINS["policy"].env, raising=False)


def deliver_at(con, home: Path, at: datetime.datetime, monkeypatch: pytest.MonkeyPatch, run_id: str):
    monkeypatch.setattr(ledger, "utcnow", lambda: at.replace(tzinfo=None))
    return delivery.deliver(con, "email__nurture", load_activation(), home, run_id)


def test_sends_over_a_cap_or_in_quiet_hours_are_held_and_go_out_later(tmp_path: Path, monkeypatch):
    home = tmp_path / "home"
    path = build(home)
    con = duckdb.connect(str(path))
    for n in range(3):  # c006 had 3 emails in the last 7 days (c006 had one already from build(): add two more)
        at = NOW.replace(tzinfo=None) - datetime.timedelta(days=2 + n, hours=3)
        key = f"extra-{n}"
        con.execute(
            "insert into ops.activation_ledger (destination, record_key, customer_id, operation, payload_hash, "
            "idempotency_key, status, attempts, change_seq, is_present, first_seen_at, updated_at) "
            "values ('email__old', ?, ?, 'upsert', 'h', ?, 'acknowledged', 1, 1, true, ?, ?)",
            [key, CAPPED, key, at, at],
        )
        con.execute(
            "insert into ops.activation_attempts (run_id, destination, channel, record_key, status, operation, "
            "attempted_at) values ('r', 'email__old', 'email', ?, 'acknowledged', 'upsert', ?)",
            [key, at],
        )
    con.execute("alter table marts.dim_customer_consents add column status varchar default 'granted'")
    # the sync model: ten Berlin (even) and ten New York (odd) customers
    con.execute(
        """
        create schema activation;
        create table activation.sync_email__nurture as
            select customer_id, customer_id || '@example.com' as email_address, 'em_trial_nurture' as campaign_id,
                   'C' as variant_id, 'Trial question' as variant_name, 'Ada' as first_name, 'Acme' as company
            from marts.dim_customer_features where customer_id between 'c000' and 'c019'
        """
    )
    # 12:00 UTC: 13:00 in Berlin, 07:00 (quiet hours until 08:00) in New York
    first = deliver_at(con, home, NOW, monkeypatch, "run-1")
    audit = con.execute(
        "select record_key, reason from ops.activation_attempts where status = 'held_contact_policy' "
        "and run_id = 'run-1' order by 1"
    ).fetchall()
    sent = {
        r[0]
        for r in con.execute(
            "select customer_id from ops.activation_ledger where destination = 'email__nurture' and status = 'acknowledged' "
            "and is_present and record_key not like 'k%'"
        ).fetchall()
    }
    new_york = {f"c{i:03d}" for i in range(1, 20, 2)}
    assert sent == {f"c{i:03d}" for i in range(0, 20, 2)} - {CAPPED}
    assert first.held_contact_policy == len(new_york) + 1 == len(audit)
    reasons = dict(audit)
    assert any("quiet hours" in r and "America/New_York" in r for r in reasons.values())
    assert any("email cap 3/7 days reached" in r for r in reasons.values())
    # two hours later New York is awake; the capped Berlin customer still waits
    later = deliver_at(con, home, NOW + datetime.timedelta(hours=2), monkeypatch, "run-2")
    sent_later = {
        r[0]
        for r in con.execute(
            "select customer_id from ops.activation_ledger where destination = 'email__nurture' and status = 'acknowledged' "
            "and is_present and record_key not like 'k%'"
        ).fetchall()
    }
    assert sent_later == sent | new_york
    assert later.held_contact_policy == 1 and later.acknowledged == len(new_york)
    con.close()
