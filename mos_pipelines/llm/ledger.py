"""``ops.llm_calls``: one row per model call — task, model, prompt version, tokens, $ cost, latency, outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb
import pandas as pd

from mos_pipelines.warehouse import insert_frame

DDL = """
create schema if not exists ops;
create table if not exists ops.llm_calls (
    call_id varchar primary key,
    called_at timestamptz not null,
    task varchar not null,
    prompt_id varchar not null,
    prompt_version varchar not null,
    model varchar not null,
    attempt integer not null,
    tokens_in integer,
    tokens_out integer,
    cost_usd double,
    latency_ms double not null,
    outcome varchar not null,      -- ok | rejected (guardrails; the template was used) | error
    detail varchar,                -- why it was rejected or failed; the price-map note when cost is unknown
    context varchar                -- what the call was for (e.g. the insight key)
);
"""


@dataclass
class CallRecord:
    call_id: str
    called_at: pd.Timestamp
    task: str
    prompt_id: str
    prompt_version: str
    model: str
    attempt: int
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    latency_ms: float
    outcome: str
    detail: str | None
    context: str | None


class Ledger:
    """Keeps every call; writes them to ``ops.llm_calls`` when given a connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.con = con
        self.records: list[CallRecord] = []
        if con is not None:
            con.execute(DDL)

    def record(self, record: CallRecord) -> None:
        self.records.append(record)
        if self.con is not None:
            insert_frame(self.con, "ops.llm_calls", pd.DataFrame([asdict(record)]))

    def totals(self) -> dict[str, float]:
        """Calls, tokens and $ of what this ledger recorded."""
        return {
            "calls": len(self.records),
            "tokens_in": sum(r.tokens_in or 0 for r in self.records),
            "tokens_out": sum(r.tokens_out or 0 for r in self.records),
            "cost_usd": sum(r.cost_usd or 0.0 for r in self.records),
            "rejected": sum(r.outcome == "rejected" for r in self.records),
            "errors": sum(r.outcome == "error" for r in self.records),
        }
