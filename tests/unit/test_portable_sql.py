"""The dbt project's SQL stays portable: DuckDB-only constructs live only in the dispatch macros of
``macros/cross_db/`` (one implementation per adapter), never in a model or another macro (issue 21: the same project
on Spark). A lint over the raw SQL (Jinja and comments removed), so it runs without any warehouse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mos_pipelines.settings import PROJECT_ROOT

DBT = PROJECT_ROOT / "dbt_project"
DISPATCH = DBT / "macros" / "cross_db"
# construct -> what to use instead
FORBIDDEN = {
    r"\bqualify\b": "a row_number() column in one CTE and `where rank = 1` in the next",
    r"\bgenerate_series\s*\(": "dbt.date_spine or a numbers CTE",
    r"\bstring_agg\s*\(": "dbt.listagg (distinct values: deduplicate first)",
    r"\bbool_(or|and)\s*\(": "max/min(case when … then 1 else 0 end) = 1",
    r"\blist_[a-z_]+\s*\(|\blist\s*\(": "a join or dbt.listagg (no list types on every engine)",
    r"\bstruct_pack\s*\(": "separate columns",
    r"::": "cast(… as …)",
    r"\bexclude\s*\(": "an explicit column list",
    r"\btry_cast\s*\(": "the safe_cast macro",
    r"\b(try_)?strptime\s*\(|\bstrftime\s*\(": "the parse_timestamp macros",
    r"\bepoch\s*\(": "the seconds_between macro",
    r"\bsha256\s*\(": "the sha256_hex macro",
    r"\bmd5\s*\(": "the md5_hex macro",
    r"\bregexp_matches\s*\(": "a dispatch macro",
    r"\barg_(max|min)\s*\(|\b(max|min)_by\s*\(": "the first_by / last_by macros, or row_number() over (…) and a filter",
    r"\bread_(parquet|csv|json)\w*\s*\(": "a source",
    r"\bilike\b": "lower(…) like …",
    r"\bas\s+(varchar|text|timestamptz|json|hugeint|ubigint|uinteger)\b": "dbt.type_string() (Spark: string), timestamp",
    r"(?<!')\btimestamp\s+with\s+time\s+zone\b": "timestamp (naive UTC); as a quoted type name (dbt.cast, contracts) it is translated",
    r"(?<!\{\{ )\bquantile(_cont|_disc)?\s*\(|\bmedian\s*\(": "the quantile_cont macro ({{ quantile_cont(…) }})",
    r"\bescape\s+'\\'": "another escape character, or replace() (a backslash opens an escape in Spark's literals)",
    r"\bregexp_(extract|replace|full_match|split_to_array)\s*\(": "regexp_replace_all or a dispatch macro",
    r"\bjson_(extract\w*|transform\w*|value|exists|keys|array_length|object)\s*\(": "the json_text macros",
    r"\b(epoch_ms|date_diff|date_sub|make_date|make_timestamp|today)\s*\(": "dbt.dateadd, dbt.datediff, dbt.date, …",
}


def _sql(path: Path) -> str:
    text = path.read_text()
    text = re.sub(r"\{#.*?#\}", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)  # Jinja comments, lines kept
    text = re.sub(r"--[^\n]*", " ", text)  # SQL comments
    return text


def _files() -> list[Path]:
    files = sorted((DBT / "models").rglob("*.sql")) + sorted((DBT / "macros").rglob("*.sql"))
    files += sorted((DBT / "tests").rglob("*.sql")) if (DBT / "tests").exists() else []
    files += sorted((DBT / "snapshots").rglob("*.sql")) if (DBT / "snapshots").exists() else []
    return [f for f in files if DISPATCH not in f.parents]


def test_the_lint_sees_the_whole_project_and_catches_a_leak():
    files = _files()
    assert len(files) > 60, f"expected every model and macro, found {len(files)}"
    leaky = "select *, x::int from t qualify row_number() over (partition by a order by b) = 1"
    assert {p for p in FORBIDDEN if re.search(p, leaky, re.I)} == {r"\bqualify\b", r"::"}
    typed = "select cast(a as varchar), cast(b as timestamp with time zone) from t where c like '%\\_%' escape '\\'"
    assert len({p for p in FORBIDDEN if re.search(p, typed, re.I)}) == 3


@pytest.mark.parametrize("pattern", sorted(FORBIDDEN))
def test_no_duckdb_only_sql_outside_the_dispatch_macros(pattern):
    found = []
    for path in _files():
        for number, line in enumerate(_sql(path).splitlines(), start=1):
            if re.search(pattern, line, re.I):
                found.append(f"{path.relative_to(DBT)}:{number}: {line.strip()[:100]}")
    assert not found, f"DuckDB-only SQL ({FORBIDDEN[pattern]} instead):\n" + "\n".join(found)
