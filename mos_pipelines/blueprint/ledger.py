"""``ops.step_runs``: one row per blueprint step per run — when, how many rows, and what it cost, split in three.

The three parts of a step's $ cost are read from the ledgers that already hold them, never estimated:

- **LLM**: the step's calls in ``ops.llm_calls`` (``context`` = ``<blueprint id>/<step id>``): tokens and $ as
  recorded per call, whatever their outcome (a rejected answer was paid for);
- **sends**: acknowledged upserts in ``ops.activation_attempts`` on the step's channel, since the approval, to
  customers of the audiences the step works on (``ops.blueprint_members``), × the cost per send the channel mart
  measures (``send_cost_usd / sends`` of the channel over the trailing window: the campaigns file's
  ``cost_per_send``, as billed);
- **ad spend**: the channel's spend in ``marts.fct_channel_performance`` after the blueprint's data day, in the
  segment, shared among the blueprint's steps on that channel by budget, and never above the step's budget.

Resume reads it: a step whose latest row for the same approved content is ``ok`` or ``stopped`` is done.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import pandas as pd

from mos_pipelines.warehouse import columns_of, insert_frame, table_exists

DDL = """
create schema if not exists ops;
create table if not exists ops.step_runs (
    blueprint_id varchar not null,
    revision integer not null,
    content_hash varchar not null,  -- of the approved content the run executed
    step_id varchar not null,
    step_type varchar not null,
    run_id varchar not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    status varchar not null,        -- ok | stopped (step budget reached) | skipped (why in detail) | failed
    rows bigint,                    -- customers in the step's list, synced members, the goal metric's count...
    budget_usd double not null,
    llm_calls integer not null,
    llm_tokens_in bigint not null,
    llm_tokens_out bigint not null,
    llm_cost_usd double not null,
    sends bigint not null,
    cost_per_send_usd double,       -- null: no sends measured on the channel in the window
    send_cost_usd double not null,
    ad_spend_usd double not null,
    cost_usd double not null,       -- llm + sends + ad spend
    detail varchar
);
create table if not exists ops.blueprint_members (
    blueprint_id varchar not null,
    step_id varchar not null,
    customer_id varchar not null,
    primary key (blueprint_id, step_id, customer_id)
);
"""

DONE = ("ok", "stopped")


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def llm_context(blueprint_id: str, step_id: str) -> str:
    """What a step's LLM calls carry in ``ops.llm_calls.context``."""
    return f"{blueprint_id}/{step_id}"


@dataclass
class Cost:
    llm_calls: int = 0
    llm_tokens_in: int = 0
    llm_tokens_out: int = 0
    llm_cost_usd: float = 0.0
    sends: int = 0
    cost_per_send_usd: float | None = None
    send_cost_usd: float = 0.0
    ad_spend_usd: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return round(self.llm_cost_usd + self.send_cost_usd + self.ad_spend_usd, 9)


def llm_part(con: duckdb.DuckDBPyConnection, blueprint_id: str, step_id: str) -> tuple[int, int, int, float]:
    """(calls, tokens in, tokens out, $) of the step's calls in ``ops.llm_calls``."""
    if not table_exists(con, "ops", "llm_calls"):
        return 0, 0, 0, 0.0
    row = con.execute(
        """select count(*), coalesce(sum(tokens_in), 0), coalesce(sum(tokens_out), 0), coalesce(sum(cost_usd), 0)
        from ops.llm_calls where context = ?""",
        [llm_context(blueprint_id, step_id)],
    ).fetchall()[0]
    return int(row[0]), int(row[1]), int(row[2]), round(float(row[3]), 9)


def cost_per_send(
    con: duckdb.DuckDBPyConnection, channel_table: str, channel: str, window_days: int
) -> tuple[float | None, str]:
    """$ per send of ``channel``: send cost / sends over the trailing ``window_days`` of the channel mart, and how
    it was found (or why not)."""
    schema, name = channel_table.split(".", 1)
    if not table_exists(con, schema, name):
        return None, f"{channel_table} is not in the warehouse"
    cols = set(columns_of(con, schema, name))
    cost_col = "send_cost_usd" if "send_cost_usd" in cols else "cost_usd" if "cost_usd" in cols else None
    if cost_col is None or "sends" not in cols:
        return None, f"{channel_table} has no sends or send_cost_usd column"
    last = con.execute(f"select max(date_day) from {channel_table}").fetchall()[0][0]
    if last is None:
        return None, f"{channel_table} has no days"
    start = last - datetime.timedelta(days=window_days - 1)
    sends, cost = con.execute(
        f"select coalesce(sum(sends), 0), coalesce(sum({cost_col}), 0) from {channel_table} "
        "where channel = ? and date_day between ? and ?",
        [channel, start, last],
    ).fetchall()[0]
    if not sends:
        return None, f"no {channel} sends in {channel_table} from {start} to {last}: cost per send unknown"
    return (
        round(float(cost) / float(sends), 12),
        f"${float(cost):,.2f} / {int(sends):,} {channel} sends, {start} to {last} ({channel_table}.{cost_col})",
    )


def sends_part(
    con: duckdb.DuckDBPyConnection, blueprint_id: str, audience_steps: tuple[str, ...], channel: str, since: str
) -> int:
    """Acknowledged upserts on ``channel`` since ``since`` (the approval) to members of ``audience_steps``."""
    if not audience_steps or not all(
        table_exists(con, "ops", t) for t in ("activation_attempts", "activation_ledger", "blueprint_members")
    ):
        return 0
    marks = ", ".join("?" for _ in audience_steps)
    start = datetime.datetime.fromisoformat(since)
    if start.tzinfo is not None:  # attempted_at is UTC without a zone
        start = start.astimezone(datetime.UTC).replace(tzinfo=None)
    row = con.execute(
        f"""
        with members as (
            select distinct customer_id from ops.blueprint_members
            where blueprint_id = ? and step_id in ({marks})
        )
        select count(*)
        from ops.activation_attempts a
        join ops.activation_ledger l on l.destination = a.destination and l.record_key = a.record_key
        join members m on m.customer_id = l.customer_id
        where a.channel = ? and a.status = 'acknowledged' and a.operation = 'upsert'
          and a.attempted_at >= ?""",
        [blueprint_id, *audience_steps, channel, start],
    ).fetchall()[0]
    return int(row[0])


@dataclass
class StepRun:
    blueprint_id: str
    revision: int
    content_hash: str
    step_id: str
    step_type: str
    run_id: str
    started_at: datetime.datetime
    finished_at: datetime.datetime | None
    status: str
    rows: int | None
    budget_usd: float
    llm_calls: int
    llm_tokens_in: int
    llm_tokens_out: int
    llm_cost_usd: float
    sends: int
    cost_per_send_usd: float | None
    send_cost_usd: float
    ad_spend_usd: float
    cost_usd: float
    detail: str | None

    def metadata(self) -> dict[str, Any]:
        """The row as plain values (asset metadata, JSON)."""
        out = asdict(self)
        for k in ("started_at", "finished_at"):
            out[k] = out[k].isoformat() if out[k] is not None else None
        return out


def append(con: duckdb.DuckDBPyConnection, run: StepRun) -> None:
    ensure(con)
    insert_frame(con, "ops.step_runs", pd.DataFrame([asdict(run)]))


def latest(con: duckdb.DuckDBPyConnection, blueprint_id: str, content_hash: str | None = None) -> list[dict[str, Any]]:
    """The latest row of every step of the blueprint (of the given approved content), in the order they started."""
    if not table_exists(con, "ops", "step_runs"):
        return []
    where, params = "blueprint_id = ?", [blueprint_id]
    if content_hash is not None:
        where, params = where + " and content_hash = ?", [blueprint_id, content_hash]
    cursor = con.execute(
        f"""select * from ops.step_runs where {where}
        qualify row_number() over (partition by step_id order by started_at desc, finished_at desc nulls first) = 1
        order by started_at, step_id""",
        params,
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def done_steps(con: duckdb.DuckDBPyConnection, blueprint_id: str, content_hash: str) -> set[str]:
    """Steps whose latest run of this approved content finished (``ok`` or ``stopped``): resume skips them."""
    return {r["step_id"] for r in latest(con, blueprint_id, content_hash) if r["status"] in DONE}


def totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = ("llm_cost_usd", "send_cost_usd", "ad_spend_usd", "cost_usd", "budget_usd")
    return {k: round(sum(float(r[k] or 0) for r in rows), 2) for k in keys}
