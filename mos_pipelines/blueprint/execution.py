"""What each step of an approved blueprint does when it runs, as functions over a DuckDB connection.

A step never spends money itself: channels are bought on the ad platforms and emails go out through the
activation jobs. A step writes what the blueprint decides — its list of customers (``ops.blueprint_members``),
how many sends its budget pays for, whether its channel's spend has reached its budget — and appends one row to
``ops.step_runs`` with the $ the ledgers say it cost (``ledger``).

- ``audience``: the customers of the segment table matching the step's predicate (and consent purpose);
- ``lookalike_tier``: the scored customers of an audience up to a top-N % tier (``ml.lookalike_scores``);
- ``ad_audience_sync`` / ``crm_sync``: the members of the upstream audiences who consent to the purpose, the list
  handed to the destinations;
- ``channel_budget``: the channel's spend after the blueprint's data day, its share for this step, capped at the
  step's budget (``stopped`` with the reason when reached);
- ``nurture_email``: sends already made to the audience (the activation ledger) × cost per send, and the send list
  the remaining budget pays for (``stopped`` when nothing remains);
- ``checkpoint``: the goal metric's count in the segment now, against the baseline and the goal, and the day's
  row of ``blueprints.progress`` (with a behind-plan insight when it falls behind: ``progress``);
- ``reserve``: nothing (held-back budget, recorded).

Over all of them, the blueprint's total budget: once its committed spend (every planned channel's spend, sends, LLM
calls) reaches ``budget_usd``, every spending step is ``stopped`` and names the figures (``budget_position``).
A step's writes (members, progress, insight, its ``ops.step_runs`` row) are one transaction: a run killed mid-step
leaves nothing of that step, and resume runs it once.

A step that cannot be computed (a missing table) is ``skipped`` with the reason; one that raises is ``failed``
and the steps after it are ``skipped`` ("after failed step ..."); the others run. Determinism: lists are ordered
by customer id and every figure comes from the warehouse, so the same blueprint on the same warehouse gives the
same rows apart from ``run_id`` and the timestamps.
"""

from __future__ import annotations

import datetime
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from mos_pipelines.blueprint import alerts, ledger, progress
from mos_pipelines.blueprint.context import Missing, as_of, require, segment_predicate
from mos_pipelines.blueprint.plan import Blueprint, Step
from mos_pipelines.configuration.blueprint import BlueprintSettings
from mos_pipelines.warehouse import table_exists, transaction

AUDIENCE_TYPES = ("audience", "lookalike_tier")
SPENDING_TYPES = ("channel_budget", "nurture_email")


class NotRunnable(ValueError):
    """The blueprint is not approved as it stands: a draft, or edited after approval."""


def runnable(bp: Blueprint) -> None:
    """Raise ``NotRunnable`` with the reason unless the file is exactly what was approved."""
    status = bp.status()
    if status == "draft":
        raise NotRunnable(
            f"blueprint {bp.blueprint_id} is a draft: only approved blueprints run "
            f"(`mos blueprint approve {bp.blueprint_id} --by <you>`)"
        )
    if status != "approved":
        assert bp.approval is not None
        raise NotRunnable(
            f"blueprint {bp.blueprint_id} was edited after approval (approved sha256 {bp.approval.content_hash[:12]}, "
            f"the file now {bp.content_hash()[:12]}): review `mos blueprint diff {bp.blueprint_id}` and approve "
            "it again"
        )


def order(bp: Blueprint) -> list[Step]:
    """The steps in dependency order (file order among the ready ones)."""
    done: set[str] = set()
    out: list[Step] = []
    pending = list(bp.steps)
    while pending:
        ready = [s for s in pending if all(d in done for d in s.depends_on)]
        if not ready:  # validate() refuses cycles; keep going rather than loop forever
            ready = pending[:1]
        for s in ready:
            out.append(s)
            done.add(s.id)
            pending.remove(s)
    return out


def upstream(bp: Blueprint, step: Step) -> list[Step]:
    """Every step ``step`` depends on, directly or not, in file order."""
    by_id = {s.id: s for s in bp.steps}
    seen: set[str] = set()
    stack = list(step.depends_on)
    while stack:
        sid = stack.pop()
        if sid in seen or sid not in by_id:
            continue
        seen.add(sid)
        stack.extend(by_id[sid].depends_on)
    return [s for s in bp.steps if s.id in seen]


def audience_steps(bp: Blueprint, step: Step) -> tuple[str, ...]:
    """The audience-building steps a step works on (its own id if it builds one)."""
    ids = [s.id for s in upstream(bp, step) if s.type in AUDIENCE_TYPES]
    return tuple(ids or ([step.id] if step.type in AUDIENCE_TYPES else []))


class Skip(Exception):
    """The step cannot be computed on this warehouse; the message says why."""


@dataclass
class Outcome:
    status: str = "ok"
    rows: int | None = None
    detail: list[str] = field(default_factory=list)
    members: list[str] | None = None  # written to ops.blueprint_members when not None
    cost: ledger.Cost = field(default_factory=ledger.Cost)
    # more writes of the step (its progress row, an insight), made in the transaction that appends its row
    writes: list[Callable[[duckdb.DuckDBPyConnection], None]] = field(default_factory=list)


def money(usd: float) -> str:
    """$1,234.56, or four decimals below a dollar (sends cost fractions of a cent)."""
    return f"${usd:,.2f}" if abs(usd) >= 1 else f"${usd:.4f}"


def _require(con: duckdb.DuckDBPyConnection, relation: str, columns: Iterable[str] = ()) -> set[str]:
    """The relation's columns; a step that needs what the warehouse lacks is skipped with the reason."""
    try:
        return require(con, relation, tuple(columns))
    except Missing as exc:
        raise Skip(str(exc)) from None


def _ids(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[str]:
    return [r[0] for r in con.execute(sql, params or []).fetchall()]


def members(con: duckdb.DuckDBPyConnection, blueprint_id: str, steps: Iterable[str]) -> list[str]:
    ids = list(steps)
    if not ids or not table_exists(con, "ops", "blueprint_members"):
        return []
    marks = ", ".join("?" for _ in ids)
    return _ids(
        con,
        f"select distinct customer_id from ops.blueprint_members where blueprint_id = ? and step_id in ({marks}) "
        "order by 1",
        [blueprint_id, *ids],
    )


def _consenting(con: duckdb.DuckDBPyConnection, table: str, ids: list[str], purpose: str | None) -> list[str]:
    """The customers of ``ids`` whose ``is_<purpose>_consented`` is true in ``table``."""
    if purpose is None:
        return ids
    column = f"is_{purpose}_consented"
    _require(con, table, ("customer_id", column))
    con.register("_bp_ids", pd.DataFrame({"customer_id": ids}, dtype="object"))
    try:
        return _ids(
            con,
            f"select distinct cast(t.customer_id as varchar) from {table} t "
            f"join _bp_ids i on cast(t.customer_id as varchar) = i.customer_id where t.{column} order by 1",
        )
    finally:
        con.unregister("_bp_ids")


# -- the step types -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    con: duckdb.DuckDBPyConnection
    bp: Blueprint
    settings: BlueprintSettings
    run_id: str = ""
    now: Callable[[], datetime.datetime] | None = None


def _audience(r: Run, step: Step, out: Outcome) -> None:
    table, where = step.params["table"], step.params["where"]
    _require(r.con, table, ("customer_id",))
    ids = _ids(r.con, f"select distinct cast(customer_id as varchar) from {table} where ({where}) order by 1")
    purpose = step.params.get("purpose")
    out.members = _consenting(r.con, table, ids, purpose)
    out.rows = len(out.members)
    out.detail.append(
        f"{out.rows:,} customers of {table} where {where}" + (f", consenting to {purpose}" if purpose else "")
    )


def _lookalike(r: Run, step: Step, out: Outcome) -> None:
    """Scored customers of the segment (as the planner counted them) up to the top-N % tier."""
    _require(r.con, "ml.lookalike_scores", ("customer_id", "audience", "tier"))
    table = r.settings.segments.table
    have = _require(r.con, table, ("customer_id",))
    where, params, skipped = segment_predicate(r.bp.objective.segment, have, alias="c")
    if skipped:
        raise Skip(f"{table} has no column {', '.join(skipped)} to put lookalike scores in the segment")
    audience, top = step.params["audience"], int(step.params["top_percent"])
    out.members = _ids(
        r.con,
        f"""select distinct cast(s.customer_id as varchar) from ml.lookalike_scores s
        join {table} c on cast(c.customer_id as varchar) = cast(s.customer_id as varchar)
        where s.audience = ? and s.tier <= ? and {where} order by 1""",
        [audience, top, *params],
    )
    out.rows = len(out.members)
    out.detail.append(f"{out.rows:,} lookalikes of {audience} in the top {top} %, in {r.bp.objective.segment_text()}")


def _sync(r: Run, step: Step, out: Outcome, purpose: str | None, to: str) -> None:
    sources = audience_steps(r.bp, step)
    ids = members(r.con, r.bp.blueprint_id, sources)
    out.members = _consenting(r.con, r.settings.segments.table, ids, purpose)
    out.rows = len(out.members)
    out.detail.append(
        f"{out.rows:,} of the {len(ids):,} members of {', '.join(sources) or 'no audience'}"
        + (f" consenting to {purpose}" if purpose else "")
        + f", for {to} (delivered by its activation job)"
    )


def _ad_sync(r: Run, step: Step, out: Outcome) -> None:
    _sync(r, step, out, step.params.get("purpose", "ad_personalization"), ", ".join(step.params["destinations"]))


def _crm_sync(r: Run, step: Step, out: Outcome) -> None:
    _sync(r, step, out, None, step.params["destination"])


def channel_spend(r: Run, channel: str) -> tuple[float, int, str]:
    """The channel's ad spend after the blueprint's data day, in the segment: ($, days with spend, how)."""
    table = r.settings.goal.channel_table
    have = _require(r.con, table, ("date_day", "channel"))
    spend_col = "spend_usd" if "spend_usd" in have else "cost_usd" if "cost_usd" in have else None
    if spend_col is None:
        raise Skip(f"{table} has no spend_usd column")
    where, params, skipped = segment_predicate(r.bp.objective.segment, have)
    after = r.bp.as_of or "1900-01-01"
    spent, days = r.con.execute(
        f"select coalesce(sum({spend_col}), 0), count(distinct date_day) filter (where {spend_col} > 0) "
        f"from {table} where channel = ? and date_day > cast(? as date) and {where}",
        [channel, after, *params],
    ).fetchall()[0]
    how = f"{table}.{spend_col} after {after}" + (
        f", segment filter on {', '.join(f.dimension for f in r.bp.objective.segment if f.dimension not in skipped)}"
        if r.bp.objective.segment
        else ""
    )
    if skipped:
        how += f" ({table} has no column {', '.join(skipped)}: every value of it counted)"
    return round(float(spent), 9), int(days), how


def _channel_budget(r: Run, step: Step, out: Outcome) -> None:
    channel = step.params["channel"]
    spent, days, how = channel_spend(r, channel)
    peers = [s for s in r.bp.steps if s.type == "channel_budget" and s.params.get("channel") == channel]
    pool = sum(s.budget_usd for s in peers)
    share = step.budget_usd / pool if pool > 0 else 1 / len(peers)
    observed = round(spent * share, 9)
    available = max(step.budget_usd - out.cost.llm_cost_usd, 0.0)
    out.rows = days
    out.cost.ad_spend_usd = round(min(observed, available), 9)
    out.detail.append(
        f"{channel} spent {money(spent)} ({how})"
        + (f"; this step's share {share:.1%} = {money(observed)}" if len(peers) > 1 else "")
    )
    if observed >= available - 0.005:
        out.status = "stopped"
        over = observed - available
        out.detail.append(
            f"budget reached: {money(available)} allocated, the step spends no more"
            + (
                f" ({money(over)} spent beyond it is not this step's: pause {channel} for this blueprint)"
                if over > 0.005
                else ""
            )
        )


def _nurture(r: Run, step: Step, out: Outcome) -> None:
    channel = step.params["channel"]
    per_person = int(step.params["sends_per_person"])
    sources = audience_steps(r.bp, step)
    assert r.bp.approval is not None
    out.cost.sends = ledger.sends_part(r.con, r.bp.blueprint_id, sources, channel, r.bp.approval.at)
    cps, how = ledger.cost_per_send(r.con, r.settings.goal.channel_table, channel, r.settings.goal.window_days)
    out.cost.cost_per_send_usd = cps
    if cps is None:
        out.status = "skipped"
        out.members = []
        out.rows = 0
        out.detail.append(f"{how}; no send list written (the step's budget cannot be enforced)")
        return
    out.cost.send_cost_usd = round(out.cost.sends * cps, 9)
    out.detail.append(f"{out.cost.sends:,} sends to the audience since approval × ${cps:.6f} ({how})")
    emailable = _consenting(
        r.con, r.settings.segments.table, members(r.con, r.bp.blueprint_id, sources), "email_marketing"
    )
    spent = out.cost.send_cost_usd + out.cost.llm_cost_usd
    remaining = step.budget_usd - spent
    if remaining < cps * per_person:
        out.status = "stopped"
        out.members, out.rows = [], 0
        out.detail.append(
            f"budget reached: {money(spent)} of {money(step.budget_usd)} spent (sends and LLM); "
            "no further sends: one more person would go over"
        )
        return
    people = min(len(emailable), math.floor(remaining / (cps * per_person) + 1e-9))
    out.members = emailable[:people]
    out.rows = people
    line = f"send list: {people:,} of {len(emailable):,} emailable members × {per_person} sends"
    if people < len(emailable):
        line += f" (the remaining {money(remaining)} pays for {people * per_person:,} sends; the rest by customer id are left out)"
    out.detail.append(line)


def _checkpoint(r: Run, step: Step, out: Outcome) -> None:
    metric = r.settings.metrics.get(r.bp.objective.metric)
    if metric is None:
        raise Skip(f"no goal metric {r.bp.objective.metric!r} in config/blueprint.yaml")
    table = r.settings.segments.table
    have = _require(r.con, table, ("customer_id",))
    where, params, skipped = segment_predicate(r.bp.objective.segment, have)
    if skipped:
        raise Skip(f"{table} has no column {', '.join(skipped)} to filter the segment")
    count_sql = f"select count(*) from {table} where ({metric.where}) and {where}"
    now = int(r.con.execute(count_sql, params).fetchall()[0][0])
    out.rows = now
    goal = r.bp.goal
    out.detail.append(
        f"{r.bp.objective.metric} in {r.bp.objective.segment_text()}: {now:,} now, baseline {goal.get('baseline')}, "
        f"goal {goal.get('target')}"
    )
    day = as_of(r.con, r.settings)
    if day is None:
        out.detail.append(f"no progress row: {r.settings.goal.channel_table} has no days")
        return
    computed_at = (r.now or _now)()
    row = progress.compute(r.con, r.bp, r.settings, now, day, r.run_id, computed_at, running=step.id)
    out.detail.append(
        f"progress on {day}: {row.status} (planned {row.planned:,.1f} [{row.planned_lower:,.1f}–"
        f"{row.planned_upper:,.1f}], day {row.days_elapsed} of {row.horizon_days}; ${row.spent_usd:,.2f} spent of "
        f"${row.planned_spend_usd:,.2f} planned)"
    )
    sql = count_sql + (f" -- params {params}" if params else "")
    report = progress.behind_report(r.con, r.bp, r.settings, row, sql) if row.status == "behind" else None
    if isinstance(report, str):
        out.detail.append(report)
    elif report is not None:
        out.detail.append(f"behind plan: insight {report.insight_id} — {report.candidate.call_to_action}")

    def write(con: duckdb.DuckDBPyConnection) -> None:
        if isinstance(report, progress.BehindReport):
            report.write(con)
        progress.write(con, row)

    out.writes.append(write)


def _reserve(r: Run, step: Step, out: Outcome) -> None:
    out.detail.append(f"{money(step.budget_usd)} held back: {step.params.get('reason', '')}")


STEP_TYPES: dict[str, Callable[[Run, Step, Outcome], None]] = {
    "audience": _audience,
    "lookalike_tier": _lookalike,
    "ad_audience_sync": _ad_sync,
    "crm_sync": _crm_sync,
    "channel_budget": _channel_budget,
    "nurture_email": _nurture,
    "checkpoint": _checkpoint,
    "reserve": _reserve,
}


# -- the blueprint's whole budget -----------------------------------------------------------------------------


@dataclass
class BudgetPosition:
    """What the blueprint has committed against its total budget: every channel's spend after the data day in the
    segment (uncapped: the money left the business whichever step it is charged to), every step's LLM calls
    (``ops.llm_calls``) and sends (their latest rows in ``ops.step_runs`` for the approved content; this step's
    fresh figures)."""

    budget_usd: float
    parts: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def committed_usd(self) -> float:
        return round(sum(self.parts.values()), 6)

    @property
    def headroom_usd(self) -> float:
        return round(self.budget_usd - self.committed_usd, 6)

    @property
    def exceeded(self) -> bool:
        return self.headroom_usd <= 0.005

    def text(self) -> str:
        parts = ", ".join(f"{k} {money(v)}" for k, v in self.parts.items() if abs(v) >= 0.005) or "nothing"
        return f"{money(self.committed_usd)} committed of the blueprint's {money(self.budget_usd)} ({parts})"

    def metadata(self) -> dict[str, float | str]:
        return {
            "blueprint_budget_usd": round(self.budget_usd, 2),
            "committed_usd": round(self.committed_usd, 2),
            "headroom_usd": round(self.headroom_usd, 2),
            "how": "; ".join([self.text(), *self.notes]),
        }


def budget_position(
    con: duckdb.DuckDBPyConnection,
    bp: Blueprint,
    settings: BlueprintSettings,
    fresh: dict[str, tuple[float, float]] | None = None,
) -> BudgetPosition:
    """The blueprint's committed spend; ``fresh`` = {step id: (LLM $, send $)} replaces a step's latest row."""
    assert bp.approval is not None
    pos = BudgetPosition(bp.budget_usd)
    r = Run(con, bp, settings)
    for channel in sorted({str(s.params["channel"]) for s in bp.steps if s.type == "channel_budget"}):
        try:
            spent, _, _ = channel_spend(r, channel)
        except Skip as exc:
            pos.notes.append(f"{channel}: {exc}")
            continue
        pos.parts[f"{channel} ad spend"] = spent
    latest = {row["step_id"]: row for row in ledger.latest(con, bp.blueprint_id, bp.approval.content_hash)}
    sends = llm = 0.0
    for s in bp.steps:
        if fresh and s.id in fresh:
            step_llm, step_sends = fresh[s.id]
        else:  # LLM calls are paid when made: read them even for a step that has not run yet
            step_llm = ledger.llm_part(con, bp.blueprint_id, s.id)[3]
            step_sends = float(latest[s.id]["send_cost_usd"] or 0) if s.id in latest else 0.0
        llm += step_llm
        sends += step_sends
    pos.parts["sends"] = round(sends, 9)
    pos.parts["LLM"] = round(llm, 9)
    return pos


def _guard_budget(r: Run, step: Step, out: Outcome) -> None:
    """Stop a spending step when the blueprint's committed spend reaches its total budget; a nurture send list is
    also cut to what the remaining headroom pays for."""
    if step.type not in SPENDING_TYPES or out.status not in ("ok", "stopped"):
        return
    pos = budget_position(r.con, r.bp, r.settings, {step.id: (out.cost.llm_cost_usd, out.cost.send_cost_usd)})
    if pos.exceeded:
        out.status = "stopped"
        if step.type == "nurture_email":
            out.members, out.rows = [], 0
        out.detail.append(
            f"blueprint budget reached: {pos.text()}; every spending step stops (raise the budget and approve "
            "again, or pause the channels)"
        )
        return
    cps = out.cost.cost_per_send_usd
    if step.type == "nurture_email" and out.members and cps:
        per_person = int(step.params["sends_per_person"])
        fits = math.floor(pos.headroom_usd / (cps * per_person) + 1e-9)
        if fits < len(out.members):
            out.members = out.members[:fits]
            out.rows = fits
            out.detail.append(f"send list cut to {fits:,}: the blueprint's headroom is {money(pos.headroom_usd)}")
            if fits == 0:
                out.status = "stopped"


# -- running ------------------------------------------------------------------------------------------------------

TEST_SLEEP_ENV = "MOS_BLUEPRINT_TEST_SLEEP"
TEST_SLEEP_MARK_ENV = "MOS_BLUEPRINT_TEST_SLEEP_MARK"


def _test_sleep(step_id: str) -> None:
    """Test hook (fault injection): ``MOS_BLUEPRINT_TEST_SLEEP="<step id>=<seconds>[,...]"`` makes the named step
    sleep inside its write transaction (after its member list is written, before its ``ops.step_runs`` row), and
    ``MOS_BLUEPRINT_TEST_SLEEP_MARK=<file>`` is created when the sleep starts — so a test can kill the run with a
    half-written step and see the transaction leave nothing behind. Unset in normal use."""
    spec = os.environ.get(TEST_SLEEP_ENV)
    if not spec:
        return
    for part in spec.split(","):
        name, _, seconds = part.partition("=")
        if name.strip() == step_id:
            mark = os.environ.get(TEST_SLEEP_MARK_ENV)
            if mark:
                with open(mark, "w") as fh:
                    fh.write(f"{step_id} sleeping {seconds} s\n")
            time.sleep(float(seconds or 0))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def execute_step(
    con: duckdb.DuckDBPyConnection,
    bp: Blueprint,
    step: Step,
    settings: BlueprintSettings,
    run_id: str,
    blocked_by: str | None = None,
    now: Callable[[], datetime.datetime] = _now,
) -> ledger.StepRun:
    """Run one step (or record it skipped after ``blocked_by`` failed) and append its row to ``ops.step_runs``.
    A step that raises is recorded ``failed`` with the error and the row is returned, not the exception."""
    runnable(bp)
    ledger.ensure(con)
    started = now()
    out = Outcome()
    c = out.cost  # the LLM part first: a spending step's budget pays for it too
    c.llm_calls, c.llm_tokens_in, c.llm_tokens_out, c.llm_cost_usd = ledger.llm_part(con, bp.blueprint_id, step.id)
    if blocked_by is not None:
        out.status = "skipped"
        out.detail.append(f"after failed step {blocked_by}: run `mos blueprint resume {bp.blueprint_id}`")
    else:
        try:
            run = Run(con, bp, settings, run_id, now)
            STEP_TYPES[step.type](run, step, out)
            _guard_budget(run, step, out)
        except Skip as exc:
            out.status, out.members = "skipped", None
            out.detail.append(str(exc))
        except (duckdb.Error, KeyError, ValueError) as exc:
            out.status, out.members, out.writes = "failed", None, []
            out.detail.append(f"{type(exc).__name__}: {' '.join(str(exc).split())}")
    if step.type in SPENDING_TYPES and c.total_usd > step.budget_usd + 0.005:
        out.detail.append(f"cost {money(c.total_usd)} is over the step's budget {money(step.budget_usd)}")
    assert bp.approval is not None
    row = ledger.StepRun(
        blueprint_id=bp.blueprint_id,
        revision=bp.revision,
        content_hash=bp.approval.content_hash,
        step_id=step.id,
        step_type=step.type,
        run_id=run_id,
        started_at=started,
        finished_at=now(),
        status=out.status,
        rows=out.rows,
        budget_usd=step.budget_usd,
        llm_calls=c.llm_calls,
        llm_tokens_in=c.llm_tokens_in,
        llm_tokens_out=c.llm_tokens_out,
        llm_cost_usd=c.llm_cost_usd,
        sends=c.sends,
        cost_per_send_usd=c.cost_per_send_usd,
        send_cost_usd=c.send_cost_usd,
        ad_spend_usd=c.ad_spend_usd,
        cost_usd=c.total_usd,
        detail="; ".join(out.detail) or None,
    )
    # One transaction: a run killed mid-step leaves neither a member list nor a progress row without its step row,
    # so resume re-runs the step from scratch and nothing is written twice.
    with transaction(con):
        if out.members is not None:
            con.execute(
                "delete from ops.blueprint_members where blueprint_id = ? and step_id = ?", [bp.blueprint_id, step.id]
            )
            if out.members:
                con.executemany(
                    "insert into ops.blueprint_members values (?, ?, ?)",
                    [(bp.blueprint_id, step.id, m) for m in out.members],
                )
        for write in out.writes:
            write(con)
        _test_sleep(step.id)
        ledger.append(con, row)
    return row


def run_blueprint(
    con: duckdb.DuckDBPyConnection,
    bp: Blueprint,
    settings: BlueprintSettings,
    run_id: str,
    resume: bool = False,
    now: Callable[[], datetime.datetime] = _now,
) -> list[ledger.StepRun]:
    """Every step in dependency order (with ``resume``: only those not done for this approved content), one row
    each in ``ops.step_runs``. A failed step's dependents are recorded skipped; the other steps run."""
    runnable(bp)
    assert bp.approval is not None
    ledger.ensure(con)
    done = ledger.done_steps(con, bp.blueprint_id, bp.approval.content_hash) if resume else set()
    failed: dict[str, str] = {}  # step id -> the failed step that blocks it
    rows = []
    for step in order(bp):
        if step.id in done:
            continue
        blocker = next((failed[d] for d in step.depends_on if d in failed), None)
        row = execute_step(con, bp, step, settings, run_id, blocked_by=blocker, now=now)
        alerts.check_run(con, bp, row, settings.alerts, now())
        if row.status == "failed":
            failed[step.id] = step.id
        elif blocker is not None:
            failed[step.id] = blocker
        rows.append(row)
    return rows


def pending_steps(con: duckdb.DuckDBPyConnection, bp: Blueprint) -> list[str]:
    """The steps a resume would run: those without a finished row for the approved content."""
    runnable(bp)
    assert bp.approval is not None
    done = ledger.done_steps(con, bp.blueprint_id, bp.approval.content_hash)
    return [s.id for s in order(bp) if s.id not in done]
