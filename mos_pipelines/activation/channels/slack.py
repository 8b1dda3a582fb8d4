"""Slack: one incoming-webhook message per notification (``text`` plus Block Kit ``blocks``).

Incoming webhooks have no idempotency key and no way to ask what was posted, so a message left in
flight by a crash cannot be reconciled: it becomes ``unknown`` and is reported, never reposted. One
message per batch keeps that to at most one. A notification that leaves the top list is not deleted
from the channel (a removal is acknowledged without a request).
"""

from __future__ import annotations

from typing import Any

import duckdb
import requests

from mos_pipelines.activation.channels import (
    AttemptLog,
    ChannelContext,
    SendResult,
    deliver_with_retries,
    require_columns,
)
from mos_pipelines.activation.channels.webhook import USER_AGENT, json_value, post
from mos_pipelines.activation.ledger import Change, Prepared, payload_hash

COLUMNS = ("notification_id", "title", "message")
SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}


def _figure(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def slack_message(row: dict[str, Any]) -> dict[str, Any]:
    """The incoming-webhook JSON of one notification."""
    severity = str(row.get("severity") or "info").lower()
    title = f"{SEVERITY_EMOJI.get(severity, '')} {row['title']}".strip()
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": str(row["title"])[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": str(row["message"])[:3000]}},
    ]
    if row.get("metric"):
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{row['metric']}*\n{_figure(row.get('figure'))}"},
                    {"type": "mrkdwn", "text": f"*previously*\n{_figure(row.get('previous_figure'))}"},
                ],
            }
        )
    if row.get("suggested_action"):
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*What to do:* {str(row['suggested_action'])[:2900]}"},
            }
        )
    context = [f"severity: {severity}"]
    if row.get("notification_source"):
        context.append(f"source: {row['notification_source']}")
    if row.get("subject"):
        context.append(f"about: {row['subject']}")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return {"text": f"{title}: {row['message']}"[:3000], "blocks": blocks}


class SlackChannel:
    kind = "slack"
    supports_remove = False
    can_reconcile = False

    def __init__(self, context: ChannelContext) -> None:
        self.context = context
        self.url = context.destination.resolved_url()
        self.batch_size = 1
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT})

    def prepare(self, rows: list[dict[str, Any]], con: duckdb.DuckDBPyConnection, now: Any) -> list[Prepared]:
        require_columns(self.context.name, self.context.destination, rows, COLUMNS)
        prepared = []
        for row in rows:
            message = slack_message({k: json_value(v) for k, v in row.items()})
            prepared.append(
                Prepared(str(row[self.context.destination.record_key]), None, message, payload_hash(message))
            )
        return prepared

    def batch_ref(self, changes: list[Change]) -> str | None:
        return None

    def send(self, changes: list[Change], log: AttemptLog) -> dict[str, SendResult]:
        timeout = self.context.destination.timeout_seconds
        return {
            change.record_key: deliver_with_retries(
                change,
                lambda: post(self.session, self.url, change.payload, {}, timeout),
                self.context.config.retry,
                self.context.limiter,
                log,
                self.context.sleep,
            )
            for change in changes
        }

    def lookup(self, rows: list[dict[str, Any]]) -> dict[str, bool | None]:
        return {r["record_key"]: None for r in rows}

    def close(self) -> None:
        self.session.close()
