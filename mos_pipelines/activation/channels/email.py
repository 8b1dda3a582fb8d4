"""Email: one message per recipient, through SMTP or into a local outbox folder.

SMTP replies 4xx are retried (transient), 5xx are permanent (dead letter).

Every message carries ``Message-ID: <idempotency key@domain>``, ``List-Unsubscribe`` (mailto and, when
configured, a one-click URL with ``List-Unsubscribe-Post``) and the campaign and variant. The outbox
sink (the default: the demo needs no server) writes ``<idempotency key>.eml`` atomically, so whether a
message was written is a file lookup. The SMTP sink takes host, port, security and credentials from
the environment; in-flight messages of a crashed run are looked up by Message-ID in a journal
Maildir when one is configured, otherwise they cannot be reconciled and become ``unknown``.
"""

from __future__ import annotations

import email.charset
import email.policy
import email.utils
import hashlib
import mailbox
import os
import smtplib
import ssl
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

import duckdb

from mos_pipelines.activation import content
from mos_pipelines.activation.channels import (
    AttemptLog,
    AttemptOutcome,
    ChannelContext,
    DeliveryError,
    SendResult,
    deliver_with_retries,
    require_columns,
)
from mos_pipelines.activation.hashing import recipient_hash
from mos_pipelines.activation.ledger import Change, Prepared, payload_hash
from mos_pipelines.configuration.activation import EmailSettings

COLUMNS = ("customer_id", "email_address", "campaign_id", "variant_id")
# Header lines stay whole up to RFC 5322's 998 characters (List-Unsubscribe is one list of <URI>s);
# bodies are quoted-printable UTF-8, readable in the outbox files.
POLICY = email.policy.compat32.clone(max_line_length=998)
BODY_CHARSET = email.charset.Charset("utf-8")
BODY_CHARSET.body_encoding = email.charset.QP


def message_id(key: str, domain: str) -> str:
    return f"<{key}@{domain}>"


def unsubscribe_token(destination: str, customer_id: str | None, address: str) -> str:
    return hashlib.sha256(f"unsubscribe|{destination}|{customer_id}|{address.lower()}".encode()).hexdigest()[:24]


def build_message(change: Change, settings: EmailSettings) -> Message:
    """The message of an upsert change (its payload holds the personalised copy). Built with the
    stdlib's compat32 message classes: several times faster than the EmailMessage header registry,
    and headers are written as given (List-Unsubscribe stays a list of <URI>s)."""
    p = change.payload
    msg = MIMEText(
        p["body"].rstrip() + "\n\n--\nTo stop these emails, use the unsubscribe link of your mail "
        "program or reply with 'unsubscribe'.\n",
        "plain",
        BODY_CHARSET,
        policy=POLICY,
    )
    msg["From"] = email.utils.formataddr((settings.from_name, settings.from_address))
    msg["To"] = p["to"]
    msg["Subject"] = Header(p["subject"], "utf-8") if not p["subject"].isascii() else p["subject"]
    msg["Date"] = email.utils.formatdate(usegmt=True)
    msg["Message-ID"] = message_id(change.idempotency_key, settings.message_id_domain)
    unsubscribe = [f"<mailto:{settings.unsubscribe_mailto}?subject=unsubscribe-{p['unsubscribe_token']}>"]
    if settings.unsubscribe_url:
        unsubscribe.insert(0, f"<{settings.unsubscribe_url.format(token=p['unsubscribe_token'])}>")
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Unsubscribe"] = ", ".join(unsubscribe)
    msg["X-MOS-Campaign"] = p["campaign_id"]
    msg["X-MOS-Variant"] = p["variant_id"]
    msg["X-MOS-Idempotency-Key"] = change.idempotency_key
    return msg


class OutboxSink:
    """A folder of .eml files, one per message, named by idempotency key (written atomically)."""

    can_lookup = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.eml"

    def send(self, msg: Message, key: str) -> AttemptOutcome:
        target = self.path(key)
        tmp = target.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            handle.write(msg.as_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        return AttemptOutcome(True, 250)

    def delivered(self, keys: list[str], domain: str) -> dict[str, bool | None]:
        return {key: self.path(key).exists() for key in keys}

    def close(self) -> None:
        pass


class SmtpSink:
    """An SMTP server; one connection for the run, reopened after an error."""

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        username: str | None,
        password: str | None,
        journal: Path | None,
        timeout: float,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password, self.timeout = username, password, timeout
        self.journal = journal
        self.can_lookup = journal is not None
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is None:
            if self.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            self._smtp = smtp
        return self._smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def send(self, msg: Message, key: str) -> AttemptOutcome:
        try:
            refused = self._connect().send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return AttemptOutcome(False, code, f"recipient refused: {code} {text!r}", permanent=code >= 500)
        except smtplib.SMTPResponseException as exc:  # sender refused, data error, ...
            self._drop()
            return AttemptOutcome(
                False, exc.smtp_code, f"{exc.smtp_code} {exc.smtp_error!r}", permanent=exc.smtp_code >= 500
            )
        except (smtplib.SMTPException, OSError) as exc:  # disconnected, refused connection, timeout
            self._drop()
            return AttemptOutcome(False, None, f"{type(exc).__name__}: {exc}", permanent=False)
        if refused:
            code, text = next(iter(refused.values()))
            return AttemptOutcome(False, code, f"recipient refused: {code} {text!r}", permanent=code >= 500)
        return AttemptOutcome(True, 250)

    def delivered(self, keys: list[str], domain: str) -> dict[str, bool | None]:
        if self.journal is None:
            return {key: None for key in keys}
        if not self.journal.exists():
            raise DeliveryError(f"the SMTP journal Maildir {self.journal} does not exist")
        box = mailbox.Maildir(self.journal, create=False)
        seen = set()
        for item in box.itervalues():
            seen.add((item.get("Message-ID") or "").strip())
        return {key: message_id(key, domain) in seen for key in keys}

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._smtp = None


def sink_from_settings(context: ChannelContext) -> OutboxSink | SmtpSink:
    settings = context.config.email
    env = settings.smtp
    host = os.environ.get(env.host_env)
    use_smtp = settings.sink == "smtp" or (settings.sink == "auto" and host)
    if not use_smtp:
        return OutboxSink(context.mos_home / "activation" / "outbox" / context.name)
    if not host:
        raise DeliveryError(f"email sink is smtp but {env.host_env} is not set (the SMTP host)")
    security = (os.environ.get(env.security_env) or "none").lower()
    if security not in ("none", "starttls", "ssl"):
        raise DeliveryError(f"{env.security_env}={security!r}: expected none, starttls or ssl")
    port_text = os.environ.get(env.port_env) or ("465" if security == "ssl" else "25")
    try:
        port = int(port_text)
    except ValueError:
        raise DeliveryError(f"{env.port_env}={port_text!r} is not a port number") from None
    journal = os.environ.get(env.journal_maildir_env)
    return SmtpSink(
        host,
        port,
        security,
        os.environ.get(env.username_env),
        os.environ.get(env.password_env),
        Path(journal) if journal else None,
        context.destination.timeout_seconds,
    )


class EmailChannel:
    kind = "email"
    supports_remove = False

    def __init__(self, context: ChannelContext, renderer: content.CopyRenderer | None = None) -> None:
        self.context = context
        self.settings = context.config.email
        self.sink = sink_from_settings(context)
        self.can_reconcile = self.sink.can_lookup
        self.batch_size = context.destination.batch_size or (50 if self.can_reconcile else 1)
        self.renderer = renderer  # built on first use, with the run's connection for the LLM cost ledger
        self.flagged: list[str] = []  # variants whose renderer text was rejected

    def _variant_copy(
        self, con: duckdb.DuckDBPyConnection, campaign_id: str, variant_id: str, variant_name: str | None, now: Any
    ) -> tuple[content.RenderedCopy, str | None, str | None]:
        """The variant's copy, and (approval id, hold reason) when it needs an approval it does not have."""
        template_id, template = self.context.config.content.template_for(campaign_id, variant_id)
        brief = content.CopyBrief(campaign_id, variant_id, variant_name, template_id, template)
        if self.renderer is None:
            self.renderer = content.renderer_from_settings(self.context.config.content, con)
        copy = content.kept_copy(con, brief, self.renderer, now)
        if copy.flagged:
            self.flagged.append(f"{campaign_id}/{variant_id}: {copy.reason}")
        claims = content.numeric_claims(copy.subject + "\n" + copy.body)
        if not claims:
            return copy, None, None
        key, status = content.request_approval(con, brief, copy, claims, now)
        if status == "approved":
            return copy, key, None
        if status == "rejected":
            return copy, key, f"copy_rejected: approval {key} rejected"
        return copy, key, f"held_for_approval: approval {key} pending (claims: {', '.join(claims)})"

    def prepare(self, rows: list[dict[str, Any]], con: duckdb.DuckDBPyConnection, now: Any) -> list[Prepared]:
        require_columns(self.context.name, self.context.destination, rows, COLUMNS)
        copies: dict[tuple[str, str], tuple[content.RenderedCopy, str | None, str | None]] = {}
        prepared = []
        for row in rows:
            variant = (str(row["campaign_id"]), str(row["variant_id"]))
            if variant not in copies:
                copies[variant] = self._variant_copy(con, *variant, row.get("variant_name"), now)
            copy, approval, hold = copies[variant]
            address = str(row["email_address"]).strip()
            payload = {
                "to": address,
                "subject": content.personalise(copy.subject, row),
                "body": content.personalise(copy.body, row),
                "campaign_id": variant[0],
                "variant_id": variant[1],
                "renderer": copy.renderer,
                "approval_id": approval,
                "unsubscribe_token": unsubscribe_token(self.context.name, row.get("customer_id"), address),
            }
            prepared.append(
                Prepared(
                    str(row[self.context.destination.record_key]),
                    row.get("customer_id"),
                    payload,
                    payload_hash(payload),
                    recipient_hash("email", address),
                    None,
                    approval,
                    hold,
                )
            )
        return prepared

    def batch_ref(self, changes: list[Change]) -> str | None:
        return None

    def send(self, changes: list[Change], log: AttemptLog) -> dict[str, SendResult]:
        results = {}
        for change in changes:
            msg = build_message(change, self.settings)
            results[change.record_key] = deliver_with_retries(
                change,
                lambda: self.sink.send(msg, change.idempotency_key),
                self.context.config.retry,
                self.context.limiter,
                log,
                self.context.sleep,
            )
        return results

    def lookup(self, rows: list[dict[str, Any]]) -> dict[str, bool | None]:
        by_key = self.sink.delivered([r["idempotency_key"] for r in rows], self.settings.message_id_domain)
        return {r["record_key"]: by_key[r["idempotency_key"]] for r in rows}

    def close(self) -> None:
        self.sink.close()
