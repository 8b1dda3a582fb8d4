"""Lead routing (``policy.routing_assignments``): declarative rules, first match wins, a catch-all last.

A lead is a customer in one of ``routing.lead_stages``. Each run routes the leads without a current assignment
(and those a ``reroute`` rule now takes from another rule); every other lead keeps its rep. A rule sends a lead to
its account's owner or to a team, where a weighted round robin picks the available rep with open capacity whose
assignments are furthest below their weighted share (ties: the order of the reps in the file). A lead that no
rep of its team can take waits for a later run, with the reason. Leads are taken in a fixed order (first seen,
then id), so the same warehouse gives the same assignments.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from mos_pipelines.configuration.policy import RoutingRule, RoutingSettings
from mos_pipelines.configuration.transform import CustomerSegment
from mos_pipelines.policy.tables import ensure_tables, naive_utc
from mos_pipelines.warehouse import columns_of, insert_frame, table_exists, transaction

LEAD_COLUMNS = ("region", "country_code", "industry", "persona", "seniority", "account_contact_count", "first_seen_at")
ASSIGNMENT_COLUMNS = (
    "assignment_id",
    "customer_id",
    "account_key",
    "rep_id",
    "team",
    "role",
    "rule",
    "reason",
    "tier",
    "segment",
    "region",
    "lifecycle_stage",
    "assigned_at",
    "is_current",
    "superseded_at",
    "superseded_by",
    "policy_version",
)


@dataclass
class Waiting:
    """A lead a rule matched but no rep could take this run."""

    customer_id: str
    rule: str
    team: str
    reason: str


@dataclass
class RoutingOutcome:
    new: pd.DataFrame  # assignments made this run
    superseded: dict[str, str] = field(default_factory=dict)  # earlier assignment id -> the one replacing it
    waiting: list[Waiting] = field(default_factory=list)
    kept: int = 0  # leads that kept their earlier assignment
    notes: list[str] = field(default_factory=list)  # inputs the warehouse lacked, for a person


# -- inputs ----------------------------------------------------------------------------------------------------


def segment_sql(bands: Sequence[CustomerSegment]) -> str:
    """The company-size band of a customer, as ``fct_channel_segment_performance`` computes it."""
    cases = []
    for band in bands:
        if band.max_contacts is None:
            cases.append(f"else '{band.segment}'")
            break
        cases.append(f"when account_contact_count <= {band.max_contacts} then '{band.segment}'")
    if not cases[-1].startswith("else"):
        cases.append("else null")
    return f"case when account_key is null or account_contact_count is null then 'no_account' {' '.join(cases)} end"


def load_leads(
    con: duckdb.DuckDBPyConnection,
    settings: RoutingSettings,
    bands: Sequence[CustomerSegment],
    tiers: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Current leads with what the rules read; columns the warehouse lacks are null (and noted). ``tiers``
    (``customer_id, tier``) stands in for ``policy.icp_scores`` (``mos policy diff``: a proposed policy's tiers,
    never written)."""
    notes: list[str] = []
    if not table_exists(con, "marts", "dim_customer_lifecycle"):
        raise RuntimeError("marts.dim_customer_lifecycle does not exist: build the customer marts first")
    features = set(columns_of(con, "marts", "dim_customer_features"))
    selected = []
    for column in LEAD_COLUMNS:
        if column in features:
            selected.append(f"f.{column}")
        else:
            selected.append(f"null as {column}")
            notes.append(
                "marts.dim_customer_features has no first_seen_at: leads are taken in id order"
                if column == "first_seen_at"
                else f"marts.dim_customer_features has no {column}: rules on it match no lead"
            )
    features_join = (
        "left join marts.dim_customer_features f on f.customer_id = l.customer_id"
        if features
        else "left join (select null as customer_id) f on false"
    )
    has_icp = tiers is not None or table_exists(con, "policy", "icp_scores")
    if not has_icp:
        notes.append("policy.icp_scores does not exist: every lead's tier is unknown")
    icp_join = (
        "left join policy.icp_scores s on s.customer_id = l.customer_id"
        if has_icp
        else "left join (select null as customer_id, null as tier) s on false"
    )
    if tiers is not None:
        con.register("_given_tiers", tiers[["customer_id", "tier"]])
        icp_join = "left join _given_tiers s on s.customer_id = l.customer_id"
    stages = ", ".join("'" + s.replace("'", "''") + "'" for s in settings.lead_stages)
    frame = con.execute(
        f"""
        with leads as (
            select cast(l.customer_id as varchar) as customer_id, l.account_key, l.lifecycle_stage,
                   cast(s.tier as varchar) as tier, {", ".join(selected)}
            from marts.dim_customer_lifecycle l {features_join} {icp_join}
            where l.lifecycle_stage in ({stages})
        )
        select *, {segment_sql(bands)} as segment from leads
        order by first_seen_at nulls last, customer_id"""
    ).df()
    if tiers is not None:
        con.unregister("_given_tiers")
    return frame, notes


def load_assignments(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    ensure_tables(con)
    return con.execute("select * from policy.routing_assignments order by assigned_at, assignment_id").df()


def load_owner_table(con: duckdb.DuckDBPyConnection, relation: str | None) -> tuple[dict[str, str], list[str]]:
    """account_key -> owner from the optional owner table, and a note when it is absent or unusable."""
    if relation is None:
        return {}, []
    schema, table = relation.split(".")
    if not table_exists(con, schema, table):
        return {}, [f"{relation} does not exist: owners come from earlier assignments only"]
    columns = set(columns_of(con, schema, table))
    if not {"account_key", "owner"} <= columns:
        return {}, [
            f"{relation} needs the columns account_key and owner (it has {', '.join(sorted(columns))}); ignored"
        ]
    rows = con.execute(
        f"select account_key, owner from {relation} where account_key is not null and owner is not null "
        "order by account_key, owner"
    ).fetchall()
    return {str(a): str(o) for a, o in rows}, []


# -- routing ---------------------------------------------------------------------------------------------------


def _matches(rule: RoutingRule, lead: dict[str, Any], owned: bool) -> bool:
    if rule.when is None:
        return True
    for key, wanted in rule.when.conditions().items():
        if key == "owned":
            if owned != wanted:
                return False
            continue
        value = lead.get(key)
        if value is None or (isinstance(value, float) and pd.isna(value)) or value not in wanted:
            return False
    return True


def _describe(rule: RoutingRule) -> str:
    if rule.is_catch_all:
        return f"rule {rule.name} (catch-all)"
    parts = []
    for key, wanted in rule.when.conditions().items() if rule.when else []:
        parts.append(f"{key}={wanted}" if key == "owned" else f"{key} in {list(wanted)}")
    return f"rule {rule.name} ({', '.join(parts)})"


def _assignment_id(customer_id: str, sequence: int) -> str:
    return hashlib.sha256(f"{customer_id}|{sequence}".encode()).hexdigest()[:16]


def route(
    leads: pd.DataFrame,
    assignments: pd.DataFrame,
    settings: RoutingSettings,
    version: str,
    now: datetime.datetime,
    owner_table: dict[str, str] | None = None,
) -> RoutingOutcome:
    """Route the leads that need it (pure: the earlier ``assignments`` in, this run's changes out)."""
    now = naive_utc(now)
    owner_table = owner_table or {}
    current = assignments[assignments["is_current"].astype(bool)] if len(assignments) else assignments
    current_by_lead: dict[str, dict[str, Any]] = (
        {str(r["customer_id"]): r for r in current.to_dict("records")} if len(current) else {}
    )
    history = assignments.groupby("customer_id").size().to_dict() if len(assignments) else {}
    lead_ids = set(leads["customer_id"].astype(str))

    rep_team = {rep.id: name for name, team in settings.teams.items() for rep in team.reps}
    unavailable = {rep.id for team in settings.teams.values() for rep in team.reps if not rep.available}
    assigned: dict[str, int] = {}
    open_leads: dict[str, int] = {}
    account_owner: dict[str, str] = {}
    for row in current.to_dict("records") if len(current) else []:
        rep = str(row["rep_id"])
        assigned[rep] = assigned.get(rep, 0) + 1
        if str(row["customer_id"]) in lead_ids:
            open_leads[rep] = open_leads.get(rep, 0) + 1
        account = row.get("account_key")
        if (
            settings.ownership.from_assignments
            and isinstance(account, str)
            and row["role"] == settings.ownership.owner_role
            and account not in account_owner
        ):
            account_owner[account] = rep

    def owner_of(account: Any) -> str | None:
        if not isinstance(account, str):
            return None
        owner = owner_table.get(account) or account_owner.get(account)
        return None if owner is None or owner in unavailable else owner

    def pick(team_name: str) -> tuple[str | None, str]:
        team = settings.teams[team_name]
        candidates = []
        for order, rep in enumerate(team.reps):
            if not rep.available:
                continue
            if open_leads.get(rep.id, 0) >= rep.capacity:
                continue
            candidates.append(((assigned.get(rep.id, 0) + 1) / rep.weight, order, rep))
        if not candidates:
            full = [r.id for r in team.reps if r.available]
            off = [r.id for r in team.reps if not r.available]
            why = f"every available rep of {team_name} is at capacity ({', '.join(full) or 'none'})"
            if off:
                why += f"; unavailable: {', '.join(off)}"
            return None, why
        _, _, rep = min(candidates, key=lambda c: (c[0], c[1]))
        return rep.id, (
            f"weighted round robin in {team_name}: {rep.id} (weight {rep.weight:g}, "
            f"{open_leads.get(rep.id, 0)} of {rep.capacity} open before this lead)"
        )

    rows: list[dict[str, Any]] = []
    outcome = RoutingOutcome(pd.DataFrame(columns=list(ASSIGNMENT_COLUMNS)))
    for lead in leads.to_dict("records"):
        customer = str(lead["customer_id"])
        account = lead.get("account_key") if isinstance(lead.get("account_key"), str) else None
        owner = owner_of(account)
        rule = next(r for r in settings.rules if _matches(r, lead, owner is not None))  # the catch-all matches all
        previous = current_by_lead.get(customer)
        if previous is not None and not (rule.reroute and previous["rule"] != rule.name):
            outcome.kept += 1
            continue
        if rule.to == "owner":
            assert owner is not None  # validation: an owner rule requires owned: true
            rep_id = owner
            team_name = rep_team.get(owner)
            role = settings.teams[team_name].role if team_name else settings.ownership.owner_role
            how = f"the account's owner {owner}" + (" (owner table)" if account in owner_table else "")
        else:
            team_name = rule.to
            picked, how = pick(team_name)
            role = settings.teams[team_name].role
            if picked is None:
                if previous is None:
                    outcome.waiting.append(Waiting(customer, rule.name, team_name, how))
                else:
                    outcome.kept += 1  # a reroute that cannot happen yet leaves the lead where it is
                continue
            rep_id = picked
        sequence = int(history.get(customer, 0))
        history[customer] = sequence + 1
        assignment_id = _assignment_id(customer, sequence)
        reason = f"{_describe(rule)} → {how}"
        if previous is not None:
            outcome.superseded[str(previous["assignment_id"])] = assignment_id
            reason += f"; rerouted from {previous['rep_id']} ({previous['rule']})"
            old_rep = str(previous["rep_id"])
            assigned[old_rep] = assigned.get(old_rep, 1) - 1
            open_leads[old_rep] = open_leads.get(old_rep, 1) - 1
        assigned[rep_id] = assigned.get(rep_id, 0) + 1
        open_leads[rep_id] = open_leads.get(rep_id, 0) + 1
        if account and role == settings.ownership.owner_role and settings.ownership.from_assignments:
            account_owner.setdefault(account, rep_id)
        rows.append(
            {
                "assignment_id": assignment_id,
                "customer_id": customer,
                "account_key": account,
                "rep_id": rep_id,
                "team": team_name,
                "role": role,
                "rule": rule.name,
                "reason": reason,
                "tier": _text(lead.get("tier")),
                "segment": _text(lead.get("segment")),
                "region": _text(lead.get("region")),
                "lifecycle_stage": _text(lead.get("lifecycle_stage")),
                "assigned_at": now,
                "is_current": True,
                "superseded_at": None,
                "superseded_by": None,
                "policy_version": version,
            }
        )
    if rows:
        outcome.new = pd.DataFrame(rows, columns=list(ASSIGNMENT_COLUMNS))
    return outcome


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value)


def write(con: duckdb.DuckDBPyConnection, outcome: RoutingOutcome, now: datetime.datetime) -> None:
    """Append this run's assignments and close the ones they replace, in one transaction."""
    ensure_tables(con)
    with transaction(con):
        for old, new in outcome.superseded.items():
            con.execute(
                "update policy.routing_assignments set is_current = false, superseded_at = ?, superseded_by = ? "
                "where assignment_id = ?",
                [naive_utc(now), new, old],
            )
        if len(outcome.new):
            frame = outcome.new.astype({"superseded_at": "datetime64[us]"})
            insert_frame(con, "policy.routing_assignments", frame)


def rep_load(con: duckdb.DuckDBPyConnection, settings: RoutingSettings) -> pd.DataFrame:
    """Per rep with current assignments: its team, current and open leads (still in a lead stage), capacity, and
    whether it is over capacity (owners take their accounts' leads whatever their capacity)."""
    ensure_tables(con)
    stages = list(settings.lead_stages)
    frame = con.execute(
        f"""
        select a.rep_id, count(*) as current_leads,
               count(*) filter (where l.lifecycle_stage in ({", ".join("?" for _ in stages)})) as open_leads
        from policy.routing_assignments a
        left join marts.dim_customer_lifecycle l on l.customer_id = a.customer_id
        where a.is_current group by a.rep_id order by a.rep_id""",
        stages,
    ).df()
    capacity = {rep.id: rep.capacity for team in settings.teams.values() for rep in team.reps}
    frame["team"] = [settings.team_of(r) for r in frame["rep_id"]]
    frame["capacity"] = [capacity.get(r) for r in frame["rep_id"]]
    frame["over_capacity"] = [c is not None and o > c for o, c in zip(frame["open_leads"], frame["capacity"])]
    return frame


def run(
    con: duckdb.DuckDBPyConnection,
    settings: RoutingSettings,
    bands: Sequence[CustomerSegment],
    version: str,
    now: datetime.datetime,
) -> RoutingOutcome:
    """Load the leads and earlier assignments, route, write; the outcome says what changed."""
    leads, notes = load_leads(con, settings, bands)
    owners, owner_notes = load_owner_table(con, settings.ownership.owner_table)
    outcome = route(leads, load_assignments(con), settings, version, now, owners)
    outcome.notes = notes + owner_notes
    write(con, outcome, now)
    return outcome
