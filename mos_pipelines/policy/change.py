"""Testing a policy change before it ships: ``diff`` (what a proposed policy would change, read-only) and
``apply`` (make it the active policy, record it, recompute the policy tables).

``diff`` runs the same plain functions the assets run (``icp.score``, ``routing.route``,
``contact.eligibility_frame``) twice on the same data and at one instant, once with the active policy and once
with the proposed one, and compares them per customer:

- ICP: customers whose tier changes (from → to, with their region and company-size segment);
- routing: leads whose current assignment would differ (rep, team, role, rule). Routing is sticky, so an
  already-routed lead moves only where a ``reroute`` rule of the proposed policy takes it; a lead not routed yet
  (new, or waiting for capacity) is routed by whichever policy is active when the assets next run;
- contact eligibility: customer × action pairs whose ``allowed`` changes (or whose action appears or goes), with
  the reasons on each side;
- the next best action (``decisioning``): people whose action for today changes (from → to, by segment), the
  sends that would be added and removed per channel, and each policy's expected extra conversions (the chosen
  actions' learned lift over no action, with a 95 % interval) and cost.

Nothing is written: the connection may be read-only. The baseline is the active policy recomputed, not the
stored tables: when data arrived (or the clock moved) since the tables were written, ``apply`` writes those
changes too, and ``baseline`` says how many there are.

``apply`` validates (the caller loads the file), records the version in ``policy.versions`` and a row in
``policy.applied``, recomputes the three tables and today's decisions with the new version and writes
``$MOS_HOME/policy/active.yaml``, all in one warehouse transaction; the file is moved into place only after the
commit. Applying the active version again changes nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

from mos_pipelines.configuration.loader import load_documents, read_document
from mos_pipelines.configuration.policy import PolicySettings
from mos_pipelines.configuration.transform import CustomerSegment
from mos_pipelines.decisioning import engine
from mos_pipelines.decisioning import store as decisions_store
from mos_pipelines.policy import contact, icp, routing, tables
from mos_pipelines.policy.active import active_file
from mos_pipelines.warehouse import columns_of, table_exists, transaction

ROUTING_KEYS = ("rep_id", "team", "role", "rule")
Z95 = 1.959963984540054


@dataclass
class PolicyDiff:
    from_version: str
    to_version: str
    tiers: pd.DataFrame  # customer_id, region, segment, from_tier, to_tier: customers whose tier changes
    routing: pd.DataFrame  # customer_id, change, from_*/to_* of ROUTING_KEYS (None: not routed), to_reason
    eligibility: pd.DataFrame  # customer_id, action, from_allowed, to_allowed (None: no such action), reasons
    actions: pd.DataFrame = field(default_factory=pd.DataFrame)  # customer_id, segment, from_action, to_action
    outcomes: dict[str, dict[str, float]] = field(default_factory=dict)  # per side: expected conversions, cost
    baseline: list[str] = field(default_factory=list)  # how the stored tables differ from the active policy now
    skipped: list[str] = field(default_factory=list)  # parts a policy could not evaluate on this warehouse
    evaluated_at: datetime.datetime | None = None

    @property
    def changes(self) -> int:
        return len(self.tiers) + len(self.routing) + len(self.eligibility) + len(self.actions)

    def summary(self) -> dict[str, Any]:
        """Counts for a person or a program (``--json``)."""
        tiers = self.tiers
        by_move = (
            tiers.groupby(["from_tier", "to_tier"], dropna=False).size().reset_index(name="customers")
            if len(tiers)
            else pd.DataFrame(columns=["from_tier", "to_tier", "customers"])
        )
        by_group = (
            tiers.assign(region=tiers["region"].fillna("unknown"), segment=tiers["segment"].fillna("unknown"))
            .groupby(["region", "segment", "from_tier", "to_tier"])
            .size()
            .reset_index(name="customers")
            if len(tiers)
            else pd.DataFrame(columns=["region", "segment", "from_tier", "to_tier", "customers"])
        )
        routes = self.routing
        moves = (
            routes.assign(
                from_team=routes["from_team"].fillna("(not routed)"), to_team=routes["to_team"].fillna("(not routed)")
            )
            .groupby(["change", "from_team", "to_team"])
            .size()
            .reset_index(name="leads")
            if len(routes)
            else pd.DataFrame(columns=["change", "from_team", "to_team", "leads"])
        )
        actions: dict[str, Any] = {}
        for action, rows in self.eligibility.groupby("action") if len(self.eligibility) else []:
            blocked = rows[(rows["from_allowed"] == True) & (rows["to_allowed"] == False)]  # noqa: E712
            allowed = rows[(rows["from_allowed"] == False) & (rows["to_allowed"] == True)]  # noqa: E712
            actions[str(action)] = {
                "allowed_to_blocked": len(blocked),
                "blocked_to_allowed": len(allowed),
                "added_or_removed": len(rows) - len(blocked) - len(allowed),
                "newly_blocked_by": _reason_counts(blocked["to_reasons"]),
                "no_longer_blocked_by": _reason_counts(allowed["from_reasons"]),
            }
        return {
            "from_version": self.from_version,
            "to_version": self.to_version,
            "evaluated_at": str(self.evaluated_at) if self.evaluated_at else None,
            "changes": self.changes,
            "icp": {
                "customers_changing_tier": len(tiers),
                "moves": _records(by_move),
                "by_region_segment": _records(by_group),
            },
            "routing": {
                "leads_changing": len(routes),
                "rerouted": int((routes["change"] == "rerouted").sum()) if len(routes) else 0,
                "not_yet_routed_routed_differently": int((routes["change"] == "not yet routed").sum())
                if len(routes)
                else 0,
                "moves": _records(moves),
            },
            "eligibility": {"pairs_changing": len(self.eligibility), "by_action": actions},
            "decisions": self._decisions_summary(),
            "baseline": self.baseline,
            "skipped": self.skipped,
        }

    def _decisions_summary(self) -> dict[str, Any]:
        acts = self.actions
        if not len(acts):
            return {"people_changing": 0, "moves": [], "by_segment": [], "sends": {}, "expected": self.outcomes}
        moves = acts.groupby(["from_action", "to_action"]).size().reset_index(name="people")
        by_segment = (
            acts.assign(segment=acts["segment"].fillna("unknown"))
            .groupby(["segment", "from_action", "to_action"])
            .size()
            .reset_index(name="people")
        )
        sends: dict[str, dict[str, int]] = {}
        for side, sign in (("to_action", "added"), ("from_action", "removed")):
            for action, n in acts[acts[side] != engine.NO_ACTION][side].value_counts().items():
                sends.setdefault(str(action), {"added": 0, "removed": 0})[sign] = int(n)
        return {
            "people_changing": len(acts),
            "moves": _records(moves),
            "by_segment": _records(by_segment),
            "sends": sends,
            "expected": self.outcomes,
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON values (numpy integers as int)."""
    return [{k: v.item() if hasattr(v, "item") else v for k, v in r.items()} for r in frame.to_dict("records")]


_DETAIL = re.compile(r" \([^()]*\)$")


def _reason_counts(reasons: pd.Series) -> dict[str, int]:
    """How often each reason occurs, its per-person detail (counts, local time) left out."""
    counts: dict[str, int] = {}
    for row in reasons:
        for reason in row if isinstance(row, (list, tuple)) else []:
            key = _DETAIL.sub("", str(reason))
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# -- computing one policy's decisions, without writing ------------------------------------------------------------


@dataclass
class Decisions:
    """What one policy decides on the warehouse's data at one instant."""

    tiers: pd.DataFrame  # customer_id, tier
    routing: pd.DataFrame  # customer_id + ROUTING_KEYS + reason: the current assignment of every routed lead
    new_assignments: int  # leads this policy would route now (not routed, or taken by a reroute rule)
    eligibility: pd.DataFrame  # customer_id, action, allowed, reasons
    skipped: list[str]
    actions: pd.DataFrame  # customer_id, action, lift, cost_usd: today's next best action


def decide(
    con: duckdb.DuckDBPyConnection,
    settings: PolicySettings,
    bands: Sequence[CustomerSegment],
    now: datetime.datetime,
) -> Decisions:
    """The tiers, routing and eligibility ``settings`` would give on this warehouse now (reads only)."""
    version = settings.version()
    scored = icp.score(con, settings.icp, version, now)
    tiers = scored.scores[["customer_id", "tier"]]
    leads, _ = routing.load_leads(con, settings.routing, bands, tiers)
    owners, _ = routing.load_owner_table(con, settings.routing.ownership.owner_table)
    earlier = _stored_assignments(con)
    outcome = routing.route(leads, earlier, settings.routing, version, now, owners)
    current = earlier[earlier["is_current"].astype(bool)] if len(earlier) else earlier
    state = _routing_state(current, outcome.new)
    eligibility, _ = contact.eligibility_frame(con, settings.contact, version, now, tiers)
    decided, _, _ = decisions_store.run(con, settings, bands, version, now, tiers)
    chosen = decided.decisions
    if len(chosen):
        explained = decided.explanations[decided.explanations["chosen"]][["decision_id", "p_response", "p_baseline"]]
        chosen = chosen.merge(explained, on="decision_id", how="left", suffixes=("", "_e"))
        chosen["lift"] = (
            (chosen["p_response_e"] - chosen["p_baseline"])
            .clip(lower=0)
            .where(chosen["action"] != engine.NO_ACTION, 0.0)
        )
        actions = chosen[["customer_id", "action", "lift", "cost_usd"]].fillna({"lift": 0.0})
    else:
        actions = pd.DataFrame(columns=["customer_id", "action", "lift", "cost_usd"])
    return Decisions(
        tiers=tiers,
        routing=state,
        new_assignments=len(outcome.new),
        eligibility=eligibility[["customer_id", "action", "allowed", "reasons"]],
        skipped=[f"{s.part}: {s.reason}" for s in scored.skipped],
        actions=actions,
    )


def _stored_assignments(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    if not table_exists(con, "policy", "routing_assignments"):
        return pd.DataFrame(columns=list(routing.ASSIGNMENT_COLUMNS))
    return con.execute("select * from policy.routing_assignments order by assigned_at, assignment_id").df()


def _routing_state(current: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Per lead, its current assignment once ``new`` assignments replace the earlier ones."""
    columns = ["customer_id", *ROUTING_KEYS, "reason"]
    frames = [f[columns] for f in (current, new) if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns)
    both = pd.concat(frames, ignore_index=True).astype({"customer_id": str})
    return both.drop_duplicates("customer_id", keep="last").reset_index(drop=True)


def routing_state(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The stored current assignment of every routed lead (what ``apply`` leaves behind)."""
    stored = _stored_assignments(con)
    return _routing_state(stored[stored["is_current"].astype(bool)] if len(stored) else stored, stored.iloc[:0])


def _segments(con: duckdb.DuckDBPyConnection, bands: Sequence[CustomerSegment]) -> pd.DataFrame:
    """customer_id, region, segment of every customer (null where the features lack the column)."""
    have = set(columns_of(con, *icp.FEATURES))
    cols = {c: c if c in have else f"cast(null as varchar) as {c}" for c in ("region", "account_key")}
    count = (
        "account_contact_count" if "account_contact_count" in have else "cast(null as bigint) as account_contact_count"
    )
    return con.execute(
        f"""
        select customer_id, region, {routing.segment_sql(bands)} as segment
        from (select cast(customer_id as varchar) as customer_id, {cols["region"]}, {cols["account_key"]}, {count}
              from marts.dim_customer_features)"""
    ).df()


# -- comparing two sets of decisions ------------------------------------------------------------------------------


def compare_tiers(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    both = before.rename(columns={"tier": "from_tier"}).merge(
        after.rename(columns={"tier": "to_tier"}), on="customer_id", how="outer"
    )
    changed = both[both["from_tier"].fillna("") != both["to_tier"].fillna("")]
    return changed[["customer_id", "from_tier", "to_tier"]].sort_values("customer_id").reset_index(drop=True)


def compare_routing(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    both = (
        before.add_prefix("from_")
        .rename(columns={"from_customer_id": "customer_id"})
        .merge(after.add_prefix("to_").rename(columns={"to_customer_id": "customer_id"}), on="customer_id", how="outer")
    )
    differs = pd.Series(False, index=both.index)
    for key in ROUTING_KEYS:
        differs |= both[f"from_{key}"].fillna("").astype(str) != both[f"to_{key}"].fillna("").astype(str)
    changed = both[differs].copy()
    changed["change"] = ["not yet routed" if pd.isna(rep) else "rerouted" for rep in changed["from_rep_id"]]
    columns = ["customer_id", "change", *(f"from_{k}" for k in ROUTING_KEYS), *(f"to_{k}" for k in ROUTING_KEYS)]
    return changed[[*columns, "to_reason"]].sort_values("customer_id").reset_index(drop=True)


def compare_eligibility(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    both = before.rename(columns={"allowed": "from_allowed", "reasons": "from_reasons"}).merge(
        after.rename(columns={"allowed": "to_allowed", "reasons": "to_reasons"}),
        on=["customer_id", "action"],
        how="outer",
    )
    for side in ("from_allowed", "to_allowed"):  # True, False, or None where the action is not in that policy
        both[side] = [None if pd.isna(v) else bool(v) for v in both[side]]
    changed = both[[a != b for a, b in zip(both["from_allowed"], both["to_allowed"], strict=True)]].copy()
    for side in ("from_reasons", "to_reasons"):
        changed[side] = [list(r) if isinstance(r, (list, tuple)) or hasattr(r, "tolist") else [] for r in changed[side]]
    return (
        changed[["customer_id", "action", "from_allowed", "to_allowed", "from_reasons", "to_reasons"]]
        .sort_values(["customer_id", "action"])
        .reset_index(drop=True)
    )


def compare_actions(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """People whose next best action differs (a person only one side has: ``no_action`` on the other)."""
    both = (
        before[["customer_id", "action"]]
        .rename(columns={"action": "from_action"})
        .merge(after[["customer_id", "action"]].rename(columns={"action": "to_action"}), on="customer_id", how="outer")
    )
    both = both.fillna({"from_action": engine.NO_ACTION, "to_action": engine.NO_ACTION})
    changed = both[both["from_action"] != both["to_action"]]
    return changed.sort_values("customer_id").reset_index(drop=True)


def expected_outcome(actions: pd.DataFrame) -> dict[str, float]:
    """Expected extra conversions of the chosen actions (sum of their learned lifts; 95 % interval from the
    Bernoulli variance of each) and their cost."""
    lift = actions["lift"].astype(float).clip(0, 1) if len(actions) else pd.Series(dtype=float)
    mean = float(lift.sum())
    half = Z95 * float((lift * (1 - lift)).sum()) ** 0.5
    acting = actions[actions["action"] != engine.NO_ACTION] if len(actions) else actions
    return {
        "actions": len(acting),
        "expected_conversions": round(mean, 3),
        "expected_conversions_low": round(max(mean - half, 0.0), 3),
        "expected_conversions_high": round(mean + half, 3),
        "cost_usd": round(float(acting["cost_usd"].sum()) if len(acting) else 0.0, 2),
    }


def diff(
    con: duckdb.DuckDBPyConnection,
    active: PolicySettings,
    proposed: PolicySettings,
    bands: Sequence[CustomerSegment],
    now: datetime.datetime,
) -> PolicyDiff:
    """What ``proposed`` would change against ``active`` on this warehouse's data at ``now``. Reads only."""
    before = decide(con, active, bands, now)
    after = decide(con, proposed, bands, now) if proposed.version() != active.version() else before
    tiers = compare_tiers(before.tiers, after.tiers)
    tiers = tiers.merge(_segments(con, bands), on="customer_id", how="left")[
        ["customer_id", "region", "segment", "from_tier", "to_tier"]
    ]
    result = PolicyDiff(
        from_version=active.version(),
        to_version=proposed.version(),
        tiers=tiers,
        routing=compare_routing(before.routing, after.routing),
        eligibility=compare_eligibility(before.eligibility, after.eligibility),
        actions=compare_actions(before.actions, after.actions).merge(
            _segments(con, bands)[["customer_id", "segment"]], on="customer_id", how="left"
        )[["customer_id", "segment", "from_action", "to_action"]],
        outcomes={"active": expected_outcome(before.actions), "proposed": expected_outcome(after.actions)},
        skipped=sorted(set(before.skipped) | set(after.skipped)),
        evaluated_at=tables.naive_utc(now),
    )
    result.baseline = _baseline(con, before)
    return result


def _baseline(con: duckdb.DuckDBPyConnection, active: Decisions) -> list[str]:
    """How the stored policy tables differ from the active policy recomputed now (changes ``apply`` also writes,
    which come from new data or the clock, not from the proposed policy)."""
    notes: list[str] = []
    if not table_exists(con, "policy", "icp_scores"):
        return ["the policy tables are not written yet: apply writes them whole"]
    stored = con.execute("select cast(customer_id as varchar) as customer_id, tier from policy.icp_scores").df()
    stale = len(compare_tiers(stored, active.tiers))
    if stale:
        notes.append(f"{stale} stored tier(s) differ from the active policy on today's data")
    if active.new_assignments:
        notes.append(f"{active.new_assignments} lead(s) the active policy would route now (new since the last run)")
    if table_exists(con, "policy", "contact_eligibility"):
        rows = con.execute(
            "select customer_id, action, allowed, reasons, evaluated_at from policy.contact_eligibility"
        ).df()
        stale = len(compare_eligibility(rows.drop(columns=["evaluated_at"]), active.eligibility))
        if stale:
            at = rows["evaluated_at"].max() if len(rows) else None
            notes.append(
                f"{stale} stored eligibility pair(s) (evaluated {at}) differ from the active policy now "
                "(contacts, conversions or the clock moved)"
            )
    return notes


# -- applying ----------------------------------------------------------------------------------------------------


@dataclass
class Applied:
    applied: bool
    from_version: str
    to_version: str
    active_file: Path
    diff: PolicyDiff | None = None
    message: str = ""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def active_yaml(settings: PolicySettings, source: Path, sha256: str, now: datetime.datetime) -> str:
    header = (
        f"# The applied policy, written by `mos policy apply` at {tables.naive_utc(now):%Y-%m-%d %H:%M:%S} UTC from\n"
        f"# {source} (sha256 {sha256}). Version {settings.version()}: every value of the policy, normalised.\n"
        "# Change it with `mos policy diff --proposed FILE` then `mos policy apply FILE`; delete this file to go\n"
        "# back to config/policy.yaml (+ MOS_POLICY_CONFIG).\n"
    )
    return header + yaml.safe_dump(settings.content(), sort_keys=True, allow_unicode=True)


def apply(
    con: duckdb.DuckDBPyConnection,
    mos_home: Path,
    active: PolicySettings,
    proposed: PolicySettings,
    source: Path,
    bands: Sequence[CustomerSegment],
    now: datetime.datetime,
    applied_by: str,
) -> Applied:
    """Make ``proposed`` the active policy (see the module docstring). ``source``: the file it was read from."""
    target = active_file(mos_home)
    from_version, to_version = active.version(), proposed.version()
    if from_version == to_version:
        return Applied(False, from_version, to_version, target, message=f"{to_version} is already the active policy")
    predicted = diff(con, active, proposed, bands, now)
    sha256 = file_sha256(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staged.write_text(active_yaml(proposed, source, sha256, now))
    try:
        reread = load_documents(PolicySettings, [read_document(staged)])
        if reread.version() != to_version:  # the written file must mean exactly what was validated
            raise RuntimeError(f"the written policy reads back as {reread.version()}, not {to_version}")
        with transaction(con):
            tables.ensure_tables(con)
            tables.record_version(con, proposed, now)
            icp.write(con, icp.score(con, proposed.icp, to_version, now))
            routing.run(con, proposed.routing, bands, to_version, now)
            contact.eligibility_table(con, proposed.contact, to_version, now)
            decided, _, _ = decisions_store.run(con, proposed, bands, to_version, now)
            decisions_store.write(con, decided, proposed.decisioning.explanations_days)
            con.execute(
                "insert into policy.applied by name select ? as applied_at, ? as applied_by, ? as from_version, "
                "? as to_version, ? as source_file, ? as file_sha256, ? as active_file, ? as tiers_changed, "
                "? as routing_changed, ? as eligibility_changed, ? as decisions_changed",
                [
                    tables.naive_utc(now),
                    applied_by,
                    from_version,
                    to_version,
                    str(source),
                    sha256,
                    str(target),
                    len(predicted.tiers),
                    len(predicted.routing),
                    len(predicted.eligibility),
                    len(predicted.actions),
                ],
            )
        staged.replace(target)
    finally:
        staged.unlink(missing_ok=True)
    return Applied(True, from_version, to_version, target, predicted, f"{from_version} -> {to_version}")
