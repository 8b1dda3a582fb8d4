"""Erasure requests applied to the warehouse: the person leaves every table, sync model and activation file.

The CRM API records ``DELETE /api/v1/customers/{id}`` in the operational store (``crm_erasure_requests``). A build
applies each request in two steps, both on the build's warehouse connection:

1. ``prepare`` (before dbt, after ingestion): a new request's identifiers are resolved from the previous build's
   ``marts.dim_customer_identity_map`` (emails, phones, anonymous ids, user ids, order ids, CRM record ids) and kept
   as SHA-256 hashes in ``ops.erasure_identifiers`` (for good: every later build removes new raw rows that carry
   them, so the person never comes back as a new customer); the values themselves wait in ``ops.erasure_pending``
   only until step 2 has run. Then the person's rows are deleted from ``raw.*`` (hash match on each identifier
   column), before staging and identity read them, and rows holding their values are deleted from every other table
   too (incremental models keep rows across builds, and their tests would see the person half-removed); the
   staging models also filter on the hashes (``not_erased``).
2. ``finish`` (after every other asset of the build): every table of every schema (``duckdb_tables()``) is
   searched again for the person's values in each text-like column (incremental and append-only tables: sessions, id
   changes, snapshots, ledgers, insights evidence, scores, assignments, decisions, policy) and matching rows are
   deleted; files under ``$MOS_HOME/activation`` (audience files, dry runs) are rewritten without them; the
   request is marked completed in ``ops.erasure_requests`` with the rows removed per table in ``ops.erasure_log``,
   and the raw values are dropped.

What is kept: a request id, the SHA-256 of the customer id and of each identifier, prefixed (``HASH_PREFIX``) so that
no entry equals the plain SHA-256 of an audience file (the suppression list; whoever has a candidate list and the
code can still test a candidate, which is why nothing else about the person is kept and the values are dropped). Activation's send-time guard (``erased_customer_ids``)
refuses a sync row whose customer id hash is on the list, even if a stale sync model still had it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

REQUESTS = "ops.erasure_requests"
IDENTIFIERS = "ops.erasure_identifiers"
PENDING = "ops.erasure_pending"
LOG = "ops.erasure_log"
OWN_TABLES = {REQUESTS, IDENTIFIERS, PENDING, LOG}
HASH_PREFIX = "mos-erasure-v1:"  # also in dbt_project/macros/staging/not_erased.sql
IDENTITY_MAP = "marts.dim_customer_identity_map"

# Raw identifier columns, hashed as normalise() does: (table, SQL expression over the row, identifier type).
RAW_RULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("raw.events", ("anonymous_id",), "anon"),
    ("raw.events", ("user_id",), "user"),
    ("raw.email", ("recipient_email",), "email"),
    ("raw.orders", ("email",), "email"),
    ("raw.orders", ("user_id",), "user"),
    ("raw.orders", ("order_id",), "order"),
    ("raw.consent", ("subject",), "*"),
    ("raw.crm_notes", ("subject",), "*"),
    ("raw.crm_contacts", ("system", "source_record_id"), "crm"),
)
# Column types that cannot hold an identifier; every other column is searched (as text).
_NOT_TEXT = (
    "BOOLEAN",
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DATE",
    "TIME",
    "INTERVAL",
    "BLOB",
)
_NOT_TEXT_PREFIXES = ("DECIMAL", "TIMESTAMP", "TIME ", "BIT")
# Values shorter than this are matched whole (a cell equal to them); longer ones also inside a cell (JSON, text).
MIN_CONTAINED = 8
ACTIVATION_TEXT_SUFFIXES = {".csv", ".json", ".jsonl", ".ndjson", ".txt", ".tsv"}


def normalise(value: str) -> str:
    """What is hashed: trimmed (spaces) and lower-cased, as the SQL side does (``lower(trim(x))``)."""
    return value.strip(" ").lower()


def sha(value: str) -> str:
    """The suppression list's hash: SHA-256 of ``HASH_PREFIX`` + the normalised value. The prefix keeps it apart
    from the plain SHA-256 that ad platforms take (an audience file's hashed email never equals a list entry)."""
    return hashlib.sha256((HASH_PREFIX + normalise(value)).encode("utf-8")).hexdigest()


def sql_hash(expr: str) -> str:
    """``sha`` in DuckDB SQL over an expression (the staging macro ``not_erased`` spells the same)."""
    return f"sha256('{HASH_PREFIX}' || lower(trim({expr})))"


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Request:
    request_id: str
    customer_id: str
    requested_at: datetime.datetime


@dataclass
class Outcome:
    """What a build did for one request: rows removed per table (``raw.events``, ``marts.fct_sessions``, files as
    ``file:activation/...``)."""

    request_id: str
    removed: dict[str, int] = field(default_factory=dict)
    completed_at: datetime.datetime | None = None

    def add(self, table: str, rows: int) -> None:
        if rows:
            self.removed[table] = self.removed.get(table, 0) + rows


def _exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    """A table or a view (on the Spark engine the dbt relations, the identity map among them, are views over
    Spark's files: read here, never purged — each Spark build rebuilds them from the purged raw layer)."""
    schema, table = relation.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]  # type: ignore[index]
    )


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    schema, table = relation.split(".")
    rows = con.execute(
        "select column_name, data_type from duckdb_columns() where schema_name = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return {name: str(data_type) for name, data_type in rows}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists ops")
    con.execute(
        f"""create table if not exists {REQUESTS} (
            request_id varchar primary key, customer_id_hash varchar not null, requested_at timestamp,
            status varchar not null, identifiers integer not null, prepared_at timestamp, completed_at timestamp)"""
    )
    con.execute(
        f"create table if not exists {IDENTIFIERS} (request_id varchar not null, identifier_type varchar not null, "
        "identifier_hash varchar not null)"
    )
    con.execute(
        f"create table if not exists {PENDING} (request_id varchar not null, identifier_type varchar not null, "
        "value varchar not null)"
    )
    con.execute(
        f"create table if not exists {LOG} (request_id varchar not null, table_name varchar not null, "
        "stage varchar not null, rows_removed bigint not null, logged_at timestamp not null)"
    )


def resolve(con: duckdb.DuckDBPyConnection, customer_id: str) -> list[tuple[str, str]]:
    """The person's identifiers as (type, value): the customer id and every node of the identity map assigned to
    it (a CRM record both as ``system:id`` and as the bare record id that notes and consent rows use)."""
    found: set[tuple[str, str]] = {("customer", customer_id)}
    if _exists(con, IDENTITY_MAP):
        present = _columns(con, IDENTITY_MAP)
        wanted = [c for c in ("node_type", "node_value", "source_record_id") if c in present]
        if {"node_type", "node_value", "customer_id"} <= set(present):
            rows = con.execute(
                f"select {', '.join(wanted)} from {IDENTITY_MAP} where customer_id = ?", [customer_id]
            ).fetchall()
            for row in rows:
                record = dict(zip(wanted, row))
                if record["node_value"] is not None:
                    found.add((str(record["node_type"]), str(record["node_value"])))
                if record.get("source_record_id") is not None:
                    found.add(("record", str(record["source_record_id"])))
    return sorted(found)


def _log(con: duckdb.DuckDBPyConnection, request_id: str, table: str, stage: str, rows: int, now: Any) -> None:
    if rows:
        con.execute(f"insert into {LOG} values (?, ?, ?, ?, ?)", [request_id, table, stage, rows, now])


def prepare(con: duckdb.DuckDBPyConnection, requests: Sequence[Request]) -> dict[str, Outcome]:
    """Register new requests (hashes kept, values pending), delete the rows of every erased person from raw and,
    for a request not completed yet, from every other table.

    Returns the rows removed per request and table (new raw rows that carry an identifier of an earlier, completed
    request are counted under that request)."""
    ensure_tables(con)
    known = {r[0] for r in con.execute(f"select request_id from {REQUESTS}").fetchall()}
    now = utcnow()
    for request in requests:
        if request.request_id in known:
            continue
        identifiers = resolve(con, request.customer_id)
        con.executemany(
            f"insert into {IDENTIFIERS} values (?, ?, ?)",
            [[request.request_id, kind, sha(value)] for kind, value in identifiers],
        )
        con.executemany(
            f"insert into {PENDING} values (?, ?, ?)",
            [[request.request_id, kind, value] for kind, value in identifiers],
        )
        con.execute(
            f"insert into {REQUESTS} values (?, ?, ?, 'pending', ?, ?, null)",
            [request.request_id, sha(request.customer_id), request.requested_at, len(identifiers), now],
        )
    outcomes: dict[str, Outcome] = {}
    registered = con.execute(f"select request_id, status, prepared_at from {REQUESTS} order by request_id").fetchall()
    for request_id, status, prepared_at in registered:
        outcome = outcomes.setdefault(request_id, Outcome(request_id))
        # a completed request's older raw rows are gone: only rows loaded since it was registered are searched
        since = prepared_at if status == "completed" else None
        for table, rows in purge_raw(con, request_id, since).items():
            outcome.add(table, rows)
            _log(con, request_id, table, "raw", rows, now)
        if status == "pending":
            # every other table too, before dbt: incremental models (fct_sessions, the snapshot, id changes) keep
            # their rows across builds, and their tests (sessions cover events) would see the person half-removed
            for table, rows in purge_tables(con, needles(pending_values(con, request_id))).items():
                outcome.add(table, rows)
                _log(con, request_id, table, "start", rows, now)
    return outcomes


def purge_raw(
    con: duckdb.DuckDBPyConnection, request_id: str, since: datetime.datetime | None = None
) -> dict[str, int]:
    """Delete the raw rows whose identifier columns hash to one of the request's identifiers (only rows loaded at
    or after ``since`` when given, for tables with ``_loaded_at``); ``raw.quarantine`` rows (unparsed text) that
    contain one of its pending values."""
    removed: dict[str, int] = {}
    for table, columns, kind in RAW_RULES:
        present = _columns(con, table) if _exists(con, table) else {}
        if not set(columns) <= set(present):
            continue
        expr = " || ':' || ".join(f"cast({c} as varchar)" for c in columns)
        kinds = "" if kind == "*" else "and identifier_type = ?"
        params: list[Any] = [request_id] if kind == "*" else [request_id, kind]
        recent = ""
        if since is not None and "_loaded_at" in present:
            recent = "and _loaded_at >= ?"
            params.append(since)
        # an uncorrelated IN over the request's hashes (no NOT EXISTS: the DuckDB 2.0.0 cache bug)
        rows = con.execute(
            f"delete from {table} where {sql_hash(expr)} in "
            f"(select identifier_hash from {IDENTIFIERS} where request_id = ? {kinds}) {recent}",
            params,
        ).fetchone()[0]  # type: ignore[index]
        if rows:
            removed[table] = removed.get(table, 0) + int(rows)
    if _exists(con, "raw.quarantine") and "raw_record" in _columns(con, "raw.quarantine"):
        values = needles(pending_values(con, request_id))
        long_values = [v for v in values if len(v) >= MIN_CONTAINED]
        if long_values:
            condition = " or ".join("contains(lower(raw_record), ?)" for _ in long_values)
            rows = con.execute(f"delete from raw.quarantine where {condition}", long_values).fetchone()[0]  # type: ignore[index]
            if rows:
                removed["raw.quarantine"] = int(rows)
    return removed


def pending_values(con: duckdb.DuckDBPyConnection, request_id: str) -> list[tuple[str, str]]:
    return [
        (str(k), str(v))
        for k, v in con.execute(
            f"select identifier_type, value from {PENDING} where request_id = ? order by 1, 2", [request_id]
        ).fetchall()
    ]


def needles(identifiers: Iterable[tuple[str, str]]) -> list[str]:
    """The lower-cased strings that mark a row or line as the person's: each value, and the SHA-256 forms
    activation writes (audience members: an email normalised Google's and Meta's way, a phone with and without
    ``+``)."""
    from mos_pipelines.activation import hashing

    found: set[str] = set()
    for kind, value in identifiers:
        value = normalise(value)
        if not value:
            continue
        found.add(value)
        if kind == "email":
            for normaliser in (hashing.google_email, hashing.meta_email):
                try:
                    found.add(hashing.sha256_hex(normaliser(value)))
                except hashing.IdentifierError:
                    pass
        elif kind == "phone":
            digits = "".join(ch for ch in value if ch.isdigit())
            if digits:
                found.update({hashing.sha256_hex("+" + digits), hashing.sha256_hex(digits)})
    return sorted(found)


def text_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    """The columns of a table that can hold an identifier (anything but numbers, booleans, dates and blobs)."""
    return [
        name
        for name, data_type in _columns(con, relation).items()
        if data_type.upper() not in _NOT_TEXT and not data_type.upper().startswith(_NOT_TEXT_PREFIXES)
    ]


def all_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select schema_name, table_name from duckdb_tables() where not internal and not temporary order by 1, 2"
    ).fetchall()
    return [f"{s}.{t}" for s, t in rows]


def _quote(relation: str) -> str:
    return ".".join(f'"{part}"' for part in relation.split("."))


def match_condition(columns: Sequence[str], values: Sequence[str]) -> tuple[str, list[str]]:
    """A SQL condition true for a row holding one of ``values`` (lower-cased) in one of ``columns``: a whole
    cell for every value, inside a cell for values of at least MIN_CONTAINED characters."""
    parts: list[str] = []
    params: list[str] = []
    short = [v for v in values if len(v) < MIN_CONTAINED]
    long_values = [v for v in values if len(v) >= MIN_CONTAINED]
    for column in columns:
        cell = f'lower(trim(cast("{column}" as varchar)))'
        if short:
            parts.append(f"{cell} in ({', '.join('?' for _ in short)})")
            params.extend(short)
        for value in long_values:
            parts.append(f"contains({cell}, ?)")
            params.append(value)
    return (" or ".join(parts) or "false"), params


def purge_tables(con: duckdb.DuckDBPyConnection, values: Sequence[str]) -> dict[str, int]:
    """Delete from every table (but the erasure tables) the rows holding one of ``values``; rows removed per table."""
    removed: dict[str, int] = {}
    if not values:
        return removed
    for relation in all_tables(con):
        if relation in OWN_TABLES:
            continue
        columns = text_columns(con, relation)
        if not columns:
            continue
        condition, params = match_condition(columns, values)
        rows = con.execute(f"delete from {_quote(relation)} where {condition}", params).fetchone()[0]  # type: ignore[index]
        if rows:
            removed[relation] = int(rows)
    return removed


def rewrite_files(folder: Path, values: Sequence[str], base: Path) -> dict[str, int]:
    """Rewrite the text files under ``folder`` without the person: lines (CSV, JSON lines) holding a value are
    dropped; in a JSON document, list items holding one are. Replaced atomically; records removed per file."""
    removed: dict[str, int] = {}
    if not values or not folder.is_dir():
        return removed
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in ACTIVATION_TEXT_SUFFIXES):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        lowered = text.lower()
        if not any(v in lowered for v in values):
            continue
        if path.suffix.lower() == ".json":
            try:
                document = json.loads(text)
            except json.JSONDecodeError:
                document = None
            if document is not None:
                cleaned, count = _drop_items(document, values)
                new_text = json.dumps(cleaned, indent=1) + "\n"
            else:
                new_text, count = _drop_lines(text, values)
        else:
            new_text, count = _drop_lines(text, values)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.erasure")
        tmp.write_text(new_text, encoding="utf-8")
        os.replace(tmp, path)
        removed[f"file:{path.relative_to(base).as_posix()}"] = max(count, 1)
    return removed


def _holds(value: Any, values: Sequence[str]) -> bool:
    text = json.dumps(value, default=str).lower()
    return any(v in text for v in values)


def _drop_items(document: Any, values: Sequence[str]) -> tuple[Any, int]:
    """A JSON document without the person: a list item that is one record (a scalar, a list of scalars, an
    object without nested containers) holding a value is dropped; a scalar field elsewhere holding one is nulled."""
    if isinstance(document, list):
        kept, count = [], 0
        for item in document:
            if _is_record(item) and _holds(item, values):
                count += 1
                continue
            cleaned, inner = _drop_items(item, values)
            kept.append(cleaned)
            count += inner
        return kept, count
    if isinstance(document, dict):
        out, count = {}, 0
        for key, item in document.items():
            if isinstance(item, dict | list):
                out[key], inner = _drop_items(item, values)
                count += inner
            elif _holds(item, values):
                out[key] = None
                count += 1
            else:
                out[key] = item
        return out, count
    return document, 0


def _is_record(item: Any) -> bool:
    if isinstance(item, list):
        return not any(isinstance(x, dict | list) for x in item)
    if isinstance(item, dict):
        return not any(isinstance(x, dict | list) for x in item.values())
    return True


def _drop_lines(text: str, values: Sequence[str]) -> tuple[str, int]:
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not any(v in line.lower() for v in values)]
    return "".join(kept), len(lines) - len(kept)


def finish(con: duckdb.DuckDBPyConnection, mos_home: Path) -> list[Outcome]:
    """Remove each pending request's person from every table and activation file; mark it completed."""
    ensure_tables(con)
    pending = [
        r[0] for r in con.execute(f"select request_id from {REQUESTS} where status = 'pending' order by 1").fetchall()
    ]
    outcomes = []
    for request_id in pending:
        outcome = Outcome(request_id)
        values = needles(pending_values(con, request_id))
        now = utcnow()
        for table, rows in purge_tables(con, values).items():
            outcome.add(table, rows)
            _log(con, request_id, table, "build", rows, now)
        for name, rows in rewrite_files(mos_home / "activation", values, mos_home).items():
            outcome.add(name, rows)
            _log(con, request_id, name, "files", rows, now)
        outcome.removed = {
            str(table): int(rows)
            for table, rows in con.execute(
                f"select table_name, sum(rows_removed) from {LOG} where request_id = ? group by 1 order by 1",
                [request_id],
            ).fetchall()
        }
        con.execute(f"delete from {PENDING} where request_id = ?", [request_id])
        con.execute(
            f"update {REQUESTS} set status = 'completed', completed_at = ? where request_id = ?", [now, request_id]
        )
        outcome.completed_at = now
        outcomes.append(outcome)
    return outcomes


def erased_customer_ids(con: duckdb.DuckDBPyConnection, customer_ids: Iterable[str]) -> set[str]:
    """The ids among ``customer_ids`` whose person asked to be erased (activation's send-time suppression list)."""
    ids = [c for c in customer_ids if c]
    if not ids or not _exists(con, IDENTIFIERS):
        return set()
    hashes = {
        r[0]
        for r in con.execute(f"select identifier_hash from {IDENTIFIERS} where identifier_type = 'customer'").fetchall()
    }
    return {c for c in ids if sha(c) in hashes}
