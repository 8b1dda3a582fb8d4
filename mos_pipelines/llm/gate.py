"""``ops.prompt_tests`` and the prompt gate: a prompt version whose golden cases failed is not used.

``mos prompts test`` appends one row per prompt version it ran (current and proposed): passed, the case results
and the prompt itself (instructions, template, guardrails), so a version that passed can be used again after the
registry changed. Where a prompt is used (``LLM.generate`` / ``LLM.structured``), ``resolve`` looks up the
version the registry holds: when its latest recorded test failed, the most recently passing version of that prompt
is used instead (its latest record passed too), with the reason; when none is known, ``PromptBlocked`` is raised
and the caller takes its deterministic path. A version never tested is used as it is (the record is what blocks).
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pandas as pd

from mos_pipelines.llm.golden import VersionResult
from mos_pipelines.llm.prompts import Prompt, PromptError, get_prompt, remember
from mos_pipelines.warehouse import insert_frame, table_exists

log = logging.getLogger("mos_pipelines.llm")

DDL = """
create schema if not exists ops;
create table if not exists ops.prompt_tests (
    prompt_id varchar not null,
    prompt_version varchar not null,
    role varchar not null,          -- current (the registry's) | proposed (from a --proposed file)
    source varchar not null,        -- template, or the model whose answers were judged
    passed boolean not null,        -- every golden case passed
    cases integer not null,
    cases_passed integer not null,
    grounding_rate double,          -- share of cases whose numbers are all in the facts (null: not checked)
    results varchar not null,       -- JSON: per case, passed, failures (rule, offending text) and the output
    prompt varchar not null,        -- JSON: the version's task, instructions, template and guardrails
    tested_at timestamptz not null
);
"""


class PromptBlocked(PromptError):
    """The prompt's version failed its golden tests and no passing version is recorded."""


def record(
    con: duckdb.DuckDBPyConnection, tested: Iterable[tuple[str, VersionResult]], tested_at: datetime.datetime
) -> int:
    """Append one ``ops.prompt_tests`` row per version tested (role, result); the number of rows."""
    rows = []
    for role, result in tested:
        p = result.prompt
        summary = result.as_dict()
        rows.append(
            {
                "prompt_id": p.prompt_id,
                "prompt_version": p.version,
                "role": role,
                "source": result.source,
                "passed": result.passed,
                "cases": summary["cases"],
                "cases_passed": summary["cases_passed"],
                "grounding_rate": result.grounding_rate,
                "results": json.dumps(summary["results"], default=str),
                "prompt": json.dumps(
                    {
                        "task": p.task,
                        "instructions": p.instructions,
                        "template": p.template,
                        "guardrails": list(p.guardrails),
                    }
                ),
                "tested_at": pd.Timestamp(tested_at),
            }
        )
    con.execute(DDL)
    if rows:
        insert_frame(con, "ops.prompt_tests", pd.DataFrame(rows))
    return len(rows)


@dataclass(frozen=True)
class Resolved:
    """The prompt to use, and why it is not the registry's version (None: it is)."""

    prompt: Prompt
    note: str | None = None


def resolve(prompt_id: str, con: duckdb.DuckDBPyConnection | None) -> Resolved:
    """The version of ``prompt_id`` to use: the registry's unless its latest golden test failed (see the module)."""
    prompt = get_prompt(prompt_id)
    if con is None or not table_exists(con, "ops", "prompt_tests"):
        return Resolved(prompt)
    latest = con.execute(
        """
        with ranked as (
            select prompt_version, passed, prompt, tested_at, results,
                   row_number() over (partition by prompt_version order by tested_at desc) as rn
            from ops.prompt_tests where prompt_id = ?
        )
        select prompt_version, passed, prompt, tested_at, results from ranked where rn = 1 order by tested_at desc
        """,
        [prompt_id],
    ).fetchall()
    mine = next((row for row in latest if row[0] == prompt.version), None)
    if mine is None or mine[1]:
        return Resolved(prompt)
    why = f"prompt {prompt_id} version {prompt.version} failed its golden cases ({_first_failure(mine[4])}, tested {mine[3]:%Y-%m-%d %H:%M} UTC)"
    for version, passed, content, tested_at, _ in latest:
        if not passed or version == prompt.version:
            continue
        data = json.loads(content)
        candidate = Prompt(prompt_id, data["task"], data["instructions"], data["template"], tuple(data["guardrails"]))
        if candidate.version != version or candidate.task != prompt.task:
            continue  # a row whose content does not hash to its version, or a prompt moved to another task
        note = f"{why}; using version {version}, which passed ({tested_at:%Y-%m-%d %H:%M} UTC)"
        log.warning("LLM: %s", note)
        return Resolved(remember(candidate), note)
    raise PromptBlocked(f"{why}; no passing version of it is recorded in ops.prompt_tests (run `mos prompts test`)")


def _first_failure(results: str) -> str:
    for case in json.loads(results):
        for failure in case.get("failures", []):
            return f"case {case['case']}: {failure['rule']}: {failure['offending']}"
    return "no case passed"


def failed_versions(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    """Every (prompt id, version) whose latest golden test failed, with when."""
    if not table_exists(con, "ops", "prompt_tests"):
        return {}
    rows = con.execute(
        """
        with ranked as (
            select prompt_id, prompt_version, passed, tested_at,
                   row_number() over (partition by prompt_id, prompt_version order by tested_at desc) as rn
            from ops.prompt_tests
        )
        select prompt_id, prompt_version, tested_at from ranked where rn = 1 and not passed
        """
    ).fetchall()
    return {(p, v): f"failed its golden cases ({t:%Y-%m-%d %H:%M} UTC)" for p, v, t in rows}


def used_failed_versions(con: duckdb.DuckDBPyConnection, phrasings: Iterable[tuple[str, dict | None]]) -> list[str]:
    """Which of ``(what, phrasing)`` used a prompt version whose latest golden test failed (the gate was bypassed,
    or the version was tested after it was used)."""
    failed = failed_versions(con)
    found = []
    for what, phrasing in phrasings:
        key = ((phrasing or {}).get("prompt_id"), (phrasing or {}).get("prompt_version"))
        if key in failed:
            found.append(f"{what}: prompt {key[0]} version {key[1]} {failed[key]}")  # type: ignore[index]
    return found
