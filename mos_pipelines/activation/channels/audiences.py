"""Ad-platform audiences: Google Customer Match and Meta Custom Audience member files (add and remove).

Identifiers are normalised per platform and SHA-256 hashed (``activation.hashing``); nothing raw is
written. One run's changes are one batch: per audience an ``add`` and a ``remove`` file named by the
batch (a hash of its idempotency keys), then a manifest listing the batch's record keys. Files are
written to a temporary name and renamed, so a crash leaves either a whole file or none, and a change
found in flight afterwards was delivered exactly when its batch manifest exists and lists it.

- Google: CSV with the hashed ``Email`` and ``Phone`` columns of the Customer Match upload.
- Meta: the JSON body of the Marketing API's ``/{audience_id}/users`` call (POST to add, DELETE to
  remove): ``{"payload": {"schema": ["EMAIL", "PHONE"], "data": [[email hash, phone hash], ...]}}``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import duckdb

from mos_pipelines.activation.channels import AttemptLog, ChannelContext, SendResult, require_columns
from mos_pipelines.activation.hashing import hashed_identifiers, recipient_hash
from mos_pipelines.activation.ledger import Change, Prepared, payload_hash

COLUMNS = ("audience_name", "customer_id", "email_address", "phone_e164")
PLATFORMS = {"google_customer_match": "google", "meta_custom_audience": "meta"}


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def google_csv(members: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Email", "Phone"])
    for m in members:
        writer.writerow([m.get("email_sha256") or "", m.get("phone_sha256") or ""])
    return out.getvalue()


def meta_json(members: list[dict[str, Any]]) -> str:
    data = [[m.get("email_sha256") or "", m.get("phone_sha256") or ""] for m in members]
    return json.dumps({"payload": {"schema": ["EMAIL", "PHONE"], "data": data}}, indent=1) + "\n"


class AudienceChannel:
    supports_remove = True
    can_reconcile = True

    def __init__(self, context: ChannelContext) -> None:
        self.context = context
        self.kind = context.destination.channel
        self.platform = PLATFORMS[self.kind]
        self.batch_size = context.destination.batch_size or 10000  # Meta takes at most 10,000 rows a call
        configured = context.destination.output_dir
        self.folder = Path(configured) if configured else context.mos_home / "activation" / "audiences" / context.name
        self.skipped_no_identifier = 0
        self.files_written: list[Path] = []

    def prepare(self, rows: list[dict[str, Any]], con: duckdb.DuckDBPyConnection, now: Any) -> list[Prepared]:
        require_columns(self.context.name, self.context.destination, rows, COLUMNS)
        prepared = []
        for row in rows:
            ids = hashed_identifiers(
                self.platform, row.get("email_address"), row.get("phone_e164"), row.get("country_code")
            )
            if not ids:
                self.skipped_no_identifier += 1
                continue
            member = {"audience": str(row["audience_name"]), **ids}
            prepared.append(
                Prepared(
                    str(row[self.context.destination.record_key]),
                    row.get("customer_id"),
                    member,
                    payload_hash(member),
                    recipient_hash("customer", row.get("customer_id")),
                    remove_payload=member,
                )
            )
        return prepared

    def batch_ref(self, changes: list[Change]) -> str | None:
        keys = "|".join(sorted(c.idempotency_key for c in changes))
        return hashlib.sha256(keys.encode()).hexdigest()[:16]

    def _manifest(self, batch: str) -> Path:
        return self.folder / "batches" / f"{batch}.json"

    def send(self, changes: list[Change], log: AttemptLog) -> dict[str, SendResult]:
        batch = self.batch_ref(changes)
        adds: dict[str, list[dict]] = {}
        removes: dict[str, list[dict]] = {}
        for change in changes:
            if change.operation == "upsert":
                adds.setdefault(change.payload["audience"], []).append(change.payload)
                old = change.remove_payload
                if old and (old.get("email_sha256"), old.get("phone_sha256")) != (
                    change.payload.get("email_sha256"),
                    change.payload.get("phone_sha256"),
                ):
                    removes.setdefault(old["audience"], []).append(old)
            elif change.remove_payload:
                removes.setdefault(change.remove_payload["audience"], []).append(change.remove_payload)
        render, ext = (google_csv, "csv") if self.platform == "google" else (meta_json, "json")
        written = []
        for operation, groups in (("add", adds), ("remove", removes)):
            for audience, members in sorted(groups.items()):
                path = self.folder / audience / f"{batch}__{operation}.{ext}"
                _write_atomic(path, render(members))
                written.append(path)
        self.files_written.extend(written)
        manifest = {
            "batch": batch,
            "records": sorted(c.record_key for c in changes),
            "files": [str(p.relative_to(self.folder)) for p in written],
        }
        _write_atomic(self._manifest(batch), json.dumps(manifest, indent=1))
        for change in changes:
            log(change, change.attempts + 1, None, "acknowledged", f"written to batch {batch}", 0.0)
        return {c.record_key: SendResult("acknowledged") for c in changes}

    def lookup(self, rows: list[dict[str, Any]]) -> dict[str, bool | None]:
        found: dict[str, bool | None] = {}
        manifests: dict[str, set[str]] = {}
        for row in rows:
            batch = row.get("batch_ref")
            if not batch:
                found[row["record_key"]] = False
                continue
            if batch not in manifests:
                path = self._manifest(batch)
                manifests[batch] = set(json.loads(path.read_text())["records"]) if path.exists() else set()
            found[row["record_key"]] = row["record_key"] in manifests[batch]
        return found

    def close(self) -> None:
        pass
