"""Activation throughput to local servers, run by hand (never a timed test).

    .venv/bin/python benchmarks/activation_bench.py --messages 5000 --requests 2000

Everything real: a DuckDB warehouse file with synthetic sync tables, an aiosmtpd server on 127.0.0.1
(counting handler, or a Maildir with --maildir) and a ThreadingHTTPServer on 127.0.0.1 answering 200.
Each scenario is one full ``deliver`` (read the sync model, prepare, consent check, diff, ledger writes,
send, acknowledge, audit) timed end to end, in a fresh warehouse:

- email, SMTP with a journal Maildir (batches of 50 between ledger commits: crashes reconcilable);
- email, SMTP without a journal (one message per batch: at most one unknown after a crash);
- email, outbox folder (.eml files, batches of 50);
- webhook (one POST per record with Idempotency-Key, batches of 20);
- a raw smtplib loop over the same messages (no ledger), as the ceiling.

Appends a JSON line to benchmarks/results/activation.jsonl.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import smtplib
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mos_pipelines.activation.delivery import deliver  # noqa: E402
from mos_pipelines.configuration import load_activation as load_config  # noqa: E402
from tests.activation_servers import SmtpServer, WebhookServer  # noqa: E402

TEMPLATES = {"camp": {"A": {"subject": "Hello {first_name}", "body": "Hi {first_name}, a note for {company}."}}}
SYNC_MODELS = {
    "sync_email__bench": {"consent_purpose": "email_marketing"},
    "sync_crm__bench": {"consent_purpose": "email_marketing"},
}


def warehouse(home: Path, n: int) -> None:
    home.mkdir(parents=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute("create schema activation; create schema marts")
        con.execute(f"""create table activation.sync_email__bench as
            select 'cus_' || i as customer_id, 'person' || i || '@example.org' as email_address, 'camp' as campaign_id,
                   'A' as variant_id, 'Name' || i as first_name, 'Firm' as company from range({n}) as t(i)""")
        con.execute(f"""create table activation.sync_crm__bench as
            select 'cus_' || i as customer_id, 'person' || i || '@example.org' as email_address,
                   'lead' as lifecycle_stage from range({n}) as t(i)""")
        con.execute(f"""create table marts.dim_customer_consents as select 'cus_' || i as customer_id,
            'email_marketing' as purpose, 'granted' as status from range({n}) as t(i)""")


def scenario(
    tmp: Path, name: str, n: int, destination: dict, email: dict | None = None, env: dict[str, str] | None = None
) -> dict:
    import os

    home = tmp / name
    warehouse(home, n)
    config_path = tmp / f"{name}.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "content": {"templates": TEMPLATES},
                "email": email or {},
                "sync_models": SYNC_MODELS,
                "destinations": {"bench": destination},
            }
        )
    )
    config = load_config(config_path)
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with duckdb.connect(str(home / "warehouse.duckdb")) as con:
            started = time.perf_counter()
            report = deliver(con, "bench", config, home, f"bench-{name}")
            seconds = time.perf_counter() - started
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    shutil.rmtree(home)
    assert report.acknowledged == n, (name, report.as_dict())
    return {"records": n, "seconds": round(seconds, 2), "per_second": round(n / seconds, 1)}


def raw_smtp(port: int, n: int) -> dict:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(n):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "a@b.example", f"person{i}@example.org", "Hello"
            msg["Message-ID"] = f"<raw{i}@bench>"
            msg.set_content("Hi")
            smtp.send_message(msg)
    seconds = time.perf_counter() - started
    return {"records": n, "seconds": round(seconds, 2), "per_second": round(n / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--maildir", action="store_true", help="the SMTP server stores messages in a Maildir")
    args = parser.parse_args()
    email_dest = {"channel": "email", "sync_model": "activation.sync_email__bench", "record_key": "customer_id"}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="mos-activation-bench-") as tmp_name:
        tmp = Path(tmp_name)
        journal = tmp / "journal"
        with SmtpServer(journal) as server:  # the Maildir serves as the journal the channel reconciles with
            env = {
                "MOS_SMTP_HOST": "127.0.0.1",
                "MOS_SMTP_PORT": str(server.port),
                "MOS_SMTP_JOURNAL_MAILDIR": str(journal),
            }
            results["email_smtp_journal_batch50"] = scenario(
                tmp, "smtp_journal", args.messages, email_dest, {"sink": "smtp"}, env
            )
        with SmtpServer(tmp / "maildir" if args.maildir else None) as server:
            env = {"MOS_SMTP_HOST": "127.0.0.1", "MOS_SMTP_PORT": str(server.port)}
            results["email_smtp_no_journal_batch1"] = scenario(
                tmp, "smtp_plain", args.messages, email_dest, {"sink": "smtp"}, env
            )
            results["raw_smtplib_no_ledger"] = raw_smtp(server.port, args.messages)
        results["email_outbox_batch50"] = scenario(tmp, "outbox", args.messages, email_dest, {"sink": "outbox"})
        with WebhookServer() as hook:
            results["webhook_batch20"] = scenario(
                tmp,
                "webhook",
                args.requests,
                {
                    "channel": "webhook",
                    "sync_model": "activation.sync_crm__bench",
                    "record_key": "customer_id",
                    "url": hook.url,
                },
            )
    line = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        **results,
    }
    out = ROOT / "benchmarks" / "results" / "activation.jsonl"
    with open(out, "a") as handle:
        handle.write(json.dumps(line) + "\n")
    for name, figures in results.items():
        print(f"{name:32s} {figures['records']:>6} in {figures['seconds']:>7.2f} s = {figures['per_second']:>8.1f}/s")
    print(f"appended to {out}")


if __name__ == "__main__":
    main()
