"""Load landing files into the ``raw`` schema: each file once, every row loaded or quarantined.

For every file of a landing source the loader
1. hashes the content; a hash already in ``ops.file_ledger`` for that source is skipped, so re-runs
   load nothing twice (also when a file is copied under another name);
2. splits it into records with their physical line numbers (JSONL in DuckDB, CSV with Python's
   ``csv`` module, which handles quoted newlines);
3. validates every record against the contract in one vectorised DuckDB query;
4. in one transaction, inserts the valid rows into ``raw.<source>``, the invalid ones into
   ``raw.quarantine`` with the field and the reason, and the file into the ledger with
   ``rows_in = rows_loaded + rows_quarantined``.

A file that cannot be read at all (not UTF-8, no header, a required column missing from the header)
is recorded in the ledger as ``unreadable`` with the reason and does not stop the other files.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from mos_pipelines.ingestion.contracts import (
    DUCKDB_TYPES,
    LINEAGE_COLUMNS,
    SOURCES,
    Field,
    Source,
    crm_system,
)
from mos_pipelines.warehouse import scalar

FILE_SUFFIXES = {"jsonl": (".jsonl", ".ndjson", ".json"), "csv": (".csv",)}

QUARANTINE_DDL = """
create table if not exists raw.quarantine (
    source varchar not null,
    source_file varchar not null,
    line bigint not null,
    field varchar,
    reason varchar not null,
    raw_record varchar,
    file_hash varchar not null,
    quarantined_at timestamp not null
)"""

LEDGER_DDL = """
create table if not exists ops.file_ledger (
    source varchar not null,
    source_file varchar not null,
    file_hash varchar not null,
    status varchar not null,          -- loaded | unreadable
    rows_in bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    error varchar,
    loaded_at timestamp not null,
    primary key (source, file_hash)
)"""


def _json_path(key: str) -> str:
    """SQL literal of the JSON path of a top-level key, quoted so any key name works."""
    return _sql_str('$."' + key.replace('"', '\\"') + '"')


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Check:
    """One field as the loader validates it for a particular file."""

    name: str  # key in the file
    type: str = "varchar"
    required: bool = False
    allowed: tuple[str, ...] | None = None
    raw_column: str | None = None  # None: validated only (kept inside a JSON record column)
    strptime_format: str | None = None  # timestamps: None means ISO 8601

    @classmethod
    def from_field(cls, f: Field) -> Check:
        return cls(f.name, f.type, f.required, f.allowed, f.raw_column)


@dataclass
class FileResult:
    """What happened to one landing file."""

    source_file: str
    file_hash: str
    status: str  # loaded | skipped | unreadable
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    error: str | None = None
    quarantine_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class SourceLoadResult:
    """Totals of one load of a landing source, for asset metadata and the CLI summary."""

    source: str
    files: list[FileResult] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)

    def _sum(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    @property
    def rows_in(self) -> int:
        return self._sum("rows_in")

    @property
    def rows_loaded(self) -> int:
        return self._sum("rows_loaded")

    @property
    def rows_quarantined(self) -> int:
        return self._sum("rows_quarantined")

    def with_status(self, status: str) -> list[FileResult]:
        return [f for f in self.files if f.status == status]


class UnreadableFile(Exception):
    """The file as a whole cannot be parsed; the message says why."""


def raw_columns(source: Source) -> dict[str, str]:
    """Columns of ``raw.<source>`` in order, with their DuckDB types."""
    if source.name == "crm_contacts":
        columns = {"system": "VARCHAR", "source_record_id": "VARCHAR", "record": "JSON"}
    else:
        columns = {f.raw_column: DUCKDB_TYPES[f.type] for f in source.fields}
        if source.subfolder_column:
            columns[source.subfolder_column] = "VARCHAR"
    return {**columns, **LINEAGE_COLUMNS}


def ensure_tables(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    """Create the raw table, the quarantine and the ledger if they do not exist yet."""
    con.execute("create schema if not exists raw")
    con.execute("create schema if not exists ops")
    cols = ", ".join(f"{_ident(c)} {t}" for c, t in raw_columns(source).items())
    con.execute(f"create table if not exists raw.{_ident(source.raw_table)} ({cols})")
    con.execute(QUARANTINE_DDL)
    con.execute(LEDGER_DDL)


def discover_files(source: Source, landing_dir: Path) -> tuple[list[Path], list[Path]]:
    """Landing files of a source in a stable order, and files present that are not of its format."""
    root = landing_dir / source.name
    if not root.is_dir():
        return [], []
    found = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    suffixes = FILE_SUFFIXES[source.format]
    return (
        [p for p in found if p.suffix.lower() in suffixes],
        [p for p in found if p.suffix.lower() not in suffixes],
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checks_for(source: Source, subfolder: str | None) -> list[Check]:
    """The validation for one file: the source contract, or the CRM system's id and timestamps."""
    if source.name != "crm_contacts":
        return [Check.from_field(f) for f in source.fields]
    system = crm_system(subfolder or "generic")
    return [Check(system.id_column, required=True, raw_column="source_record_id")] + [
        Check(col, type="timestamp", strptime_format=system.timestamp_format) for col in system.timestamp_columns
    ]


def _subfolder(source: Source, path: Path, landing_dir: Path) -> str | None:
    if not source.subfolders:
        return None
    parts = path.relative_to(landing_dir / source.name).parts
    if len(parts) < 2:
        raise UnreadableFile(
            f"{source.name} files belong in a subfolder per system/platform, "
            f"e.g. landing/{source.name}/<name>/{path.name}"
        )
    return parts[0]


# ---------------------------------------------------------------------------------------------
# Parsing: a file becomes a DuckDB relation `records(line, raw_record, <fields as text>, extra)`.


def _jsonl_records(con: duckdb.DuckDBPyConnection, path: Path, checks: list[Check]) -> None:
    """Create temp table ``records`` from a JSONL file, one row per non-blank line."""
    known = "[" + ", ".join(_sql_str(c.name) for c in checks) + "]"
    # Each kind of value read with one call over the list of its paths: the line is parsed once per kind, not once
    # per field (at 4.4M events of 9 fields, most of the source's load time).
    texts = [c for c in checks if c.type != "json"]
    jsons = [c for c in checks if c.type == "json"]
    lists = ",\n".join(
        f"case when is_object then {function}(line, [{', '.join(_json_path(c.name) for c in kind)}]) end as _{name}"
        for function, name, kind in (("json_extract_string", "texts", texts), ("json_extract", "jsons", jsons))
        if kind
    )
    position = {id(c): f"_texts[{i}]" for i, c in enumerate(texts, start=1)}
    position.update({id(c): f"_jsons[{i}]" for i, c in enumerate(jsons, start=1)})
    fields = ",\n".join(f"{position[id(c)]} as {_ident('v_' + c.name)}" for c in checks)
    try:
        # the lines first, in a table of their own: splitting the file is one row's work on one thread, and the
        # parsing below then runs on every thread (0.68 -> 0.53 s per 24 MiB file on 2 cores)
        con.execute(
            """
            create or replace temp table _jsonl_lines as
            select generate_subscripts(parts, 1) as line_no, rtrim(unnest(parts), chr(13)) as line
            from (select string_split(content, chr(10)) as parts from read_text(?))
            """,
            [str(path)],
        )
        con.execute(
            f"""
            create or replace temp table records as
            with lines as (select * from _jsonl_lines),
            parsed as (
                select line_no, line,
                       case when json_valid(line) then json_type(line) = 'OBJECT' else false end as is_object
                from lines
                where trim(line) <> ''
            ),
            extracted as (select *, {lists} from parsed)
            select
                line_no as _line_no,
                line as raw_record,
                case when not is_object then
                    case when json_valid(line) then 'not a JSON object' else 'malformed JSON' end
                end as parse_error,
                {fields},
                -- the map rebuild is costly: only for lines that have keys outside the contract
                case when is_object and len(list_filter(json_keys(line), lambda k: not list_contains({known}, k))) > 0
                    then to_json(map_from_entries(list_filter(
                        map_entries(json_transform(line, '"MAP(VARCHAR, JSON)"')),
                        lambda e: not list_contains({known}, e.key)
                    )))
                end as extra
            from extracted
            """
        )
    except duckdb.Error as exc:
        # the file's transaction is rolled back, the lines table with it
        raise UnreadableFile(f"cannot read as UTF-8 text lines: {exc}") from exc
    con.execute("drop table _jsonl_lines")


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Records of a CSV file with the physical line each starts on (the header is line 1)."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        start = 1
        for row in reader:
            yield start, row
            start = reader.line_num + 1


def _csv_records(con: duckdb.DuckDBPyConnection, path: Path, checks: list[Check]) -> list[str]:
    """Create temp table ``records`` from a CSV file; returns the header."""
    try:
        rows = _csv_rows(path)
        first = next(rows, None)
        if first is None:
            raise UnreadableFile("empty file: a CSV needs a header row")
        header = [h.strip() for h in first[1]]
        if len(set(header)) != len(header):
            raise UnreadableFile(f"duplicate column names in the header: {header}")
        missing = [c.name for c in checks if c.required and c.name not in header]
        if missing:
            raise UnreadableFile(
                f"required column(s) {', '.join(missing)} missing from the header (found: {', '.join(header)})"
            )
        lines: list[int] = []
        raws: list[str | None] = []
        errors: list[str | None] = []
        columns: list[list[str | None]] = [[] for _ in header]
        width = len(header)
        for line, row in rows:
            if not any(cell.strip() for cell in row):
                continue  # blank line: not a record
            lines.append(line)
            if len(row) != width:
                errors.append(f"expected {width} fields, found {len(row)}")
                raws.append(_csv_line(row))
                for col in columns:
                    col.append(None)
            else:
                errors.append(None)
                raws.append(None)
                for col, cell in zip(columns, row):
                    col.append(cell)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text ({exc})") from exc
    except csv.Error as exc:
        raise UnreadableFile(f"CSV parse error: {exc}") from exc

    frame = pd.DataFrame(
        {
            "_line_no": pd.Series(lines, dtype="int64"),
            # explicit dtypes: an all-None column would otherwise register as DuckDB type NULL
            "parse_error": pd.Series(errors, dtype="string"),
            "raw_record": pd.Series(raws, dtype="string"),
        }
    )
    for name, values in zip(header, columns):
        frame["v_" + name] = pd.Series(values, dtype="string")
    for c in checks:  # optional contract columns the file does not have
        if c.name not in header:
            frame["v_" + c.name] = pd.Series([None] * len(frame), dtype="string")
    con.register("csv_frame", frame)
    try:
        con.execute("create or replace temp table records as select * from csv_frame")
    finally:
        con.unregister("csv_frame")
    return header


def _csv_line(row: list[str]) -> str:
    """One CSV record as text. The writer quotes fields containing its line terminator, so keep the
    default terminator (an empty one would leave embedded newlines unquoted) and cut it off after."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(row)
    return buf.getvalue()[:-2]


# ---------------------------------------------------------------------------------------------
# Validation and typed values, as SQL over `records`.


def _typed(c: Check, col: str) -> str:
    """SQL for the typed value of a text column (null when absent or unparseable)."""
    value = f"nullif(trim({col}), '')"
    if c.type == "varchar":
        return col
    if c.type == "json":
        return col
    if c.type == "timestamp":
        if c.strptime_format:
            return f"try_strptime({value}, {_sql_str(c.strptime_format)})"
        return f"(try_cast({value} as timestamptz) at time zone 'UTC')"
    return f"try_cast({value} as {DUCKDB_TYPES[c.type]})"


EXPECTED = {
    "timestamp": "an ISO 8601 timestamp, e.g. 2026-03-01T14:05:00Z",
    "date": "a date YYYY-MM-DD",
    "double": "a number with '.' as decimal separator",
    "bigint": "a whole number",
    "boolean": "true or false",
}


def _error_terms(checks: list[Check], one_of: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(field, rule, SQL giving the row's error message or null) for every rule, in reporting order."""
    terms: list[tuple[str, str, str]] = []
    for c in checks:
        col = _ident("v_" + c.name)
        present = f"nullif(trim({col}::varchar), '') is not null"
        if c.required:
            rule = "missing required field"
            terms.append((c.name, rule, f"case when not ({present}) then {_sql_str(rule + ' ' + c.name)} end"))
        if c.type in EXPECTED:
            expected = EXPECTED[c.type]
            if c.strptime_format:
                expected = f"a timestamp in the format {c.strptime_format}"
            terms.append(
                (
                    c.name,
                    f"not {expected}",
                    f"case when {present} and {_typed(c, col)} is null then "
                    f"{_sql_str('field ' + c.name + ': ')} || {col} || {_sql_str(' is not ' + expected)} end",
                )
            )
        if c.allowed:
            allowed = ", ".join(_sql_str(a) for a in c.allowed)
            rule = f"not one of {', '.join(c.allowed)}"
            terms.append(
                (
                    c.name,
                    rule,
                    f"case when {present} and {col} not in ({allowed}) then "
                    f"{_sql_str('field ' + c.name + ': ')} || {col} || {_sql_str(' is ' + rule)} end",
                )
            )
    if one_of:
        present_any = " or ".join(f"nullif(trim({_ident('v_' + n)}), '') is not null" for n in one_of)
        rule = f"missing all of {', '.join(one_of)}"
        terms.append((", ".join(one_of), rule, f"case when not ({present_any}) then {_sql_str(rule)} end"))
    return terms


def _validate(con: duckdb.DuckDBPyConnection, checks: list[Check], one_of: tuple[str, ...]) -> None:
    """Add ``error_field``, ``error_rule`` and ``error`` to ``records`` (null error = valid row).

    ``error`` lists every rule the record breaks; ``error_field``/``error_rule`` name the first.
    """
    terms = _error_terms(checks, one_of)
    if terms:
        messages = ", ".join(sql for _, _, sql in terms)
        first_field = " ".join(f"when ({sql}) is not null then {_sql_str(name)}" for name, _, sql in terms)
        first_rule = " ".join(
            f"when ({sql}) is not null then {_sql_str(name + ': ' + rule)}" for name, rule, sql in terms
        )
        error_sql = f"coalesce(parse_error, nullif(concat_ws('; ', {messages}), ''))"
        field_sql = f"case when parse_error is not null then null {first_field} end"
        rule_sql = f"case when parse_error is not null then parse_error {first_rule} end"
    else:
        error_sql, field_sql, rule_sql = "parse_error", "null::varchar", "parse_error"
    con.execute(
        f"create or replace temp table records as select *, {field_sql} as error_field, "
        f"{rule_sql} as error_rule, {error_sql} as error from records"
    )


# ---------------------------------------------------------------------------------------------


def _insert_valid(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    checks: list[Check],
    header: list[str] | None,
    meta: dict[str, object],
) -> int:
    """Insert the valid records into raw.<source>; returns the number inserted."""
    target = raw_columns(source)
    select: dict[str, str] = {}
    for c in checks:
        if c.raw_column:
            select[c.raw_column] = _typed(c, _ident("v_" + c.name))
    if source.subfolder_column:
        select[source.subfolder_column] = _sql_str(str(meta["subfolder"]))
    if source.name == "crm_contacts":
        assert header is not None
        pairs = ", ".join(f"{_sql_str(h)}, {_ident('v_' + h)}" for h in header)
        select["record"] = f"json_object({pairs})"
        select["_extra"] = "null::json"
    elif source.format == "csv":
        assert header is not None
        known = {c.name for c in checks}
        extra = [h for h in header if h not in known]
        pairs = ", ".join(f"{_sql_str(h)}, {_ident('v_' + h)}" for h in extra)
        select["_extra"] = f"json_object({pairs})" if extra else "null::json"
    else:
        select["_extra"] = "extra::json"
    select["_source_file"] = _sql_str(str(meta["source_file"]))
    select["_line"] = "_line_no"
    select["_file_hash"] = _sql_str(str(meta["file_hash"]))
    select["_loaded_at"] = f"'{meta['loaded_at']}'::timestamp"
    cols = ", ".join(_ident(c) for c in target)
    exprs = ", ".join(f"{select[c]}::{t}" for c, t in target.items())
    con.execute(
        f"insert into raw.{_ident(source.raw_table)} ({cols}) "
        f"select {exprs} from records where error is null order by _line_no"
    )
    return scalar(con, "select count(*) from records where error is null")


def _insert_quarantine(
    con: duckdb.DuckDBPyConnection, source: Source, header: list[str] | None, meta: dict
) -> dict[str, int]:
    """Insert invalid records into raw.quarantine; returns counts per reason."""
    if header is not None:  # CSV rows that parsed into fields: rebuild their text (only the invalid few)
        columns = ", ".join(_ident("v_" + h) for h in header)
        rebuilt = [
            (_csv_line(["" if v is None else v for v in values]), line)
            for line, *values in con.execute(
                f"select _line_no, {columns} from records where error is not null and raw_record is null"
            ).fetchall()
        ]
        if rebuilt:
            con.executemany("update records set raw_record = ? where _line_no = ?", rebuilt)
    con.execute(
        f"""insert into raw.quarantine
        select {_sql_str(source.name)}, {_sql_str(str(meta["source_file"]))}, _line_no, error_field, error,
               raw_record, {_sql_str(str(meta["file_hash"]))}, '{meta["loaded_at"]}'::timestamp
        from records where error is not null order by _line_no"""
    )
    return dict(
        con.execute(
            "select error_rule, count(*) from records where error is not null group by 1 order by 2 desc, 1"
        ).fetchall()
    )


def load_file(
    con: duckdb.DuckDBPyConnection, source: Source, path: Path, landing_dir: Path, file_hash: str
) -> FileResult:
    """Load one file atomically. Raises nothing for bad content: that is recorded in the result."""
    rel = path.relative_to(landing_dir).as_posix()
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    meta = {"source_file": rel, "file_hash": file_hash, "loaded_at": loaded_at}
    result = FileResult(source_file=rel, file_hash=file_hash, status="loaded")
    con.execute("begin transaction")
    try:
        try:
            meta["subfolder"] = _subfolder(source, path, landing_dir)
            checks = checks_for(source, meta["subfolder"])  # type: ignore[arg-type]
            header = None
            if source.format == "jsonl":
                _jsonl_records(con, path, checks)
            else:
                header = _csv_records(con, path, checks)
            _validate(con, checks, source.one_of)
            result.rows_in = scalar(con, "select count(*) from records")
            result.rows_loaded = _insert_valid(con, source, checks, header, meta)
            result.quarantine_reasons = _insert_quarantine(con, source, header, meta)
            result.rows_quarantined = sum(result.quarantine_reasons.values())
        except UnreadableFile as exc:
            con.execute("rollback")
            con.execute("begin transaction")
            result = FileResult(source_file=rel, file_hash=file_hash, status="unreadable", error=str(exc))
        con.execute(
            "insert into ops.file_ledger values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                source.name,
                rel,
                file_hash,
                result.status,
                result.rows_in,
                result.rows_loaded,
                result.rows_quarantined,
                result.error,
                loaded_at,
            ],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.execute("drop table if exists records")
    return result


def load_source(
    con: duckdb.DuckDBPyConnection,
    source_name: str,
    landing_dir: Path,
    progress: Callable[[int, int, str], None] | None = None,
) -> SourceLoadResult:
    """Load every new file of one landing source. Files already in the ledger are skipped."""
    source = SOURCES[source_name]
    ensure_tables(con, source)
    files, ignored = discover_files(source, landing_dir)
    seen = dict(
        con.execute("select file_hash, source_file from ops.file_ledger where source = ?", [source.name]).fetchall()
    )
    outcome = SourceLoadResult(
        source=source.name, ignored_files=[p.relative_to(landing_dir).as_posix() for p in ignored]
    )
    for i, path in enumerate(files):
        digest = file_sha256(path)
        rel = path.relative_to(landing_dir).as_posix()
        if digest in seen:
            outcome.files.append(FileResult(rel, digest, "skipped", error=f"already loaded as {seen[digest]}"))
        else:
            outcome.files.append(load_file(con, source, path, landing_dir, digest))
            seen[digest] = rel
        if progress:
            progress(i + 1, len(files), rel)
    return outcome


def loaded_version(con: duckdb.DuckDBPyConnection, source_name: str) -> str:
    """A short hash of the files of a source in the ledger (content hash and status): changes when, and only when,
    a file is loaded (or quarantined, or found unreadable) — the source's data version."""
    rows = con.execute(
        "select file_hash, status from ops.file_ledger where source = ? order by file_hash, status", [source_name]
    ).fetchall()
    digest = hashlib.sha256()
    for file_hash, status in rows:
        digest.update(f"{file_hash}\t{status}\n".encode())
    return digest.hexdigest()[:16]


def reconciliation_errors(con: duckdb.DuckDBPyConnection, source_name: str) -> list[str]:
    """Files whose ledger count differs from the rows actually in raw + quarantine (should be none)."""
    source = SOURCES[source_name]
    rows = con.execute(
        f"""
        with ledger as (
            select source_file, file_hash, rows_in, rows_loaded, rows_quarantined
            from ops.file_ledger where source = ? and status = 'loaded'
        ),
        loaded as (select _file_hash as file_hash, count(*) as n from raw.{_ident(source.raw_table)} group by 1),
        quarantined as (select file_hash, count(*) as n from raw.quarantine where source = ? group by 1)
        select l.source_file, l.rows_in, coalesce(ld.n, 0), coalesce(q.n, 0), l.rows_loaded, l.rows_quarantined
        from ledger l
        left join loaded ld using (file_hash)
        left join quarantined q using (file_hash)
        where l.rows_in <> coalesce(ld.n, 0) + coalesce(q.n, 0)
           or l.rows_loaded <> coalesce(ld.n, 0) or l.rows_quarantined <> coalesce(q.n, 0)
        """,
        [source.name, source.name],
    ).fetchall()
    return [
        f"{f}: {rows_in} rows in the file, {n_raw} in raw.{source.raw_table} + {n_q} quarantined "
        f"(ledger says {l_loaded} + {l_q})"
        for f, rows_in, n_raw, n_q, l_loaded, l_q in rows
    ]
