"""``policy.icp_scores`` → ``policy.routing_assignments`` and ``policy.contact_eligibility`` (group ``policy``), and
``decisions.next_best_action`` (group ``decisioning``), which the activation sync models read."""

import contextlib
import datetime
from collections.abc import Iterator
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from mos_pipelines.configuration import load_transform
from mos_pipelines.configuration.policy import PolicySettings
from mos_pipelines.decisioning import store as decisions
from mos_pipelines.defs._common import md_list, partial_result, warehouse_asset
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.policy import contact, icp, routing, tables
from mos_pipelines.policy.active import load_active
from mos_pipelines.settings import get_settings

OWNER = "team:revenue-operations"
GROUP = "policy"

# the relations the engagement signals read, as the active policy says when the definitions load
_SIGNAL_DEPS = sorted(
    {tuple(s.relation.split(".")) for s in load_active(get_settings().mos_home).settings.icp.engagement.signals}
)


def _table(frame: pd.DataFrame, columns: list[str] | None = None, rows: int = 10) -> dg.MetadataValue:
    """The first rows of ``frame`` as a markdown table."""
    if frame.empty:
        return dg.MetadataValue.md("none")
    shown = frame[columns or list(frame.columns)].head(rows)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return dg.MetadataValue.md("\n".join(lines))


@contextlib.contextmanager
def _policy_session(mos: MosHome) -> Iterator[tuple[PolicySettings, duckdb.DuckDBPyConnection, str, datetime.datetime]]:
    """The policy in effect (the applied one, else config/policy.yaml), a warehouse connection, the policy's
    version (recorded in policy.versions) and the moment the asset evaluates at."""
    settings = load_active(mos.paths.mos_home).settings
    now = datetime.datetime.now(datetime.UTC)
    with mos.connect() as con:
        yield settings, con, tables.record_version(con, settings, now), now


@warehouse_asset(
    key=["policy", "icp_scores"],
    group=GROUP,
    owner=OWNER,
    deps=[
        ["marts", "dim_customer_features"],
        *[list(d) for d in _SIGNAL_DEPS if list(d) != ["marts", "dim_customer_features"]],
    ],
    parts="fit rules and engagement signals",
    description=(
        "One row per customer: `fit_score` (firmographic rules of `config/policy.yaml` icp.fit_rules with weights, "
        "0–100), `engagement_score` (signals with exponential decay, half-life in days, up to the data's as-of "
        "time), their levels, `tier` A–D from the tier matrix, the rules that fired and were evaluated, and "
        "`policy_version`. A rule or signal the warehouse cannot evaluate is skipped with the reason."
    ),
)
def icp_scores(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    with _policy_session(mos) as (settings, con, version, now):
        result = icp.score(con, settings.icp, version, now)
        icp.write(con, result)
        tiers = result.scores["tier"].value_counts().sort_index()
        metadata = {
            "dagster/row_count": len(result.scores),
            "policy_version": version,
            "as_of_at": str(result.as_of_at),
            "fit_rules_evaluated": ", ".join(result.evaluated_rules) or "none",
            "signals": ", ".join(result.signals) or "none",
            **{f"tier_{tier}": int(count) for tier, count in tiers.items()},
            "preview": _table(
                result.scores, ["customer_id", "fit_score", "engagement_score", "tier", "fit_rules_fired"]
            ),
        }
        return partial_result(context, con, metadata, result.skipped)


@warehouse_asset(
    key=["policy", "routing_assignments"],
    group=GROUP,
    owner=OWNER,
    deps=[["policy", "icp_scores"], ["marts", "dim_customer_lifecycle"], ["marts", "dim_customer_features"]],
    description=(
        "Lead routing: every lead (a customer in `routing.lead_stages`) is routed once by the first matching rule "
        "of `config/policy.yaml` (a catch-all last) to its account's owner or to a team's rep by weighted round "
        "robin with capacity, skipping unavailable reps; `rep_id, team, role (AE/BDR), rule, reason, assigned_at, "
        "policy_version`. A re-run routes only new leads (and those a `reroute` rule takes); earlier assignments "
        "stay, replaced ones are kept with `is_current = false`. Leads of a team whose reps are all full or away "
        "wait for the next run (`waiting_by_team` in the metadata): capacity is a business fact, not a failure."
    ),
)
def routing_assignments(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    bands = load_transform().mos__marketing_customer_segments
    with _policy_session(mos) as (settings, con, version, now):
        outcome = routing.run(con, settings.routing, bands, version, now)
        load = routing.rep_load(con, settings.routing)
        waiting: dict[str, list[routing.Waiting]] = {}
        for w in outcome.waiting:
            waiting.setdefault(w.team, []).append(w)
        for team, items in waiting.items():  # a business fact (capacity), not a part that could not be computed
            context.log.warning(f"{len(items)} lead(s) of {team} wait for the next run: {items[0].reason}")
        metadata: dict[str, Any] = {
            "dagster/row_count": len(outcome.new),
            "policy_version": version,
            "routed": len(outcome.new),
            "rerouted": len(outcome.superseded),
            "kept": outcome.kept,
            "waiting": len(outcome.waiting),
            "waiting_by_team": dg.MetadataValue.json(
                {team: {"leads": len(items), "reason": items[0].reason} for team, items in waiting.items()}
            ),
            "by_rule": dg.MetadataValue.json(outcome.new["rule"].value_counts().to_dict() if len(outcome.new) else {}),
            "reps": _table(load, rows=50),
            "reps_over_capacity": int(load["over_capacity"].sum()),
            "notes": md_list(outcome.notes),
            "preview": _table(outcome.new, ["customer_id", "rep_id", "role", "rule", "reason"]),
        }
        return dg.MaterializeResult(metadata=metadata)


@warehouse_asset(
    key=["policy", "contact_eligibility"],
    group=GROUP,
    owner=OWNER,
    deps=[
        ["policy", "icp_scores"],
        ["marts", "dim_customer_features"],
        ["marts", "dim_customer_lifecycle"],
        ["marts", "dim_customer_consents"],
        ["marts", "fct_conversions"],
    ],
    description=(
        "Per customer × action of `config/policy.yaml` contact.actions, at materialization time: `allowed` and "
        "every `reasons` it is not (lifecycle stage, ICP tier, consent, frequency caps per channel and across "
        "channels counted on the person's local days, quiet hours in their time zone, cool-down after a "
        "conversion), with the counts, the time zone and where it came from, and `policy_version`. Contacts are "
        "the acknowledged sends of `ops.activation_attempts`. Read by decisioning (next slice)."
    ),
)
def contact_eligibility(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    with _policy_session(mos) as (settings, con, version, now):
        frame, notes = contact.eligibility_table(con, settings.contact, version, now)
    for note in notes:
        context.log.warning(note)
    allowed = frame.groupby("action")["allowed"].agg(["sum", "count"]) if len(frame) else None
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "policy_version": version,
            "evaluated_at": str(tables.naive_utc(now)),
            **(
                {f"allowed/{action}": f"{int(r['sum'])} of {int(r['count'])}" for action, r in allowed.iterrows()}
                if allowed is not None
                else {}
            ),
            "notes": md_list(notes),
        }
    )


@warehouse_asset(
    key=["decisions", "next_best_action"],
    group="decisioning",
    owner=OWNER,
    deps=[
        ["policy", "icp_scores"],
        ["policy", "routing_assignments"],
        ["policy", "contact_eligibility"],
        ["marts", "dim_customer_features"],
        ["marts", "dim_customer_lifecycle"],
        ["marts", "dim_customer_consents"],
        ["marts", "fct_conversions"],
        ["ml", "lookalike_scores"],
    ],
    description=(
        "One row per person and day: the next best action of `config/policy.yaml` decisioning (route to sales, "
        "nurture email, re-engagement email, paid retargeting, or no action), chosen by priority = (P(response | "
        "action) − P(response | no action)) × value × context weight × lever among the candidates the contact "
        "policy allows (caps, consent, stage, tier, cool-down; quiet hours are the delivery's), with a persistent "
        "holdout. P is learned per action and cell (lifecycle stage × tier) from earlier decisions and the "
        "conversions that followed. `decisions.explanations` holds every candidate's terms and the rules that "
        "passed or failed. The activation sync models contact a person only through what this chose."
    ),
)
def next_best_action(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
    bands = load_transform().mos__marketing_customer_segments
    with _policy_session(mos) as (settings, con, version, now):
        decided, estimates, notes = decisions.run(con, settings, bands, version, now)
        decisions.write(con, decided, settings.decisioning.explanations_days)
    for note in notes:
        context.log.warning(note)
    frame = decided.decisions
    counts = frame["action"].value_counts().to_dict() if len(frame) else {}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "policy_version": version,
            "estimates_version": estimates.version(),
            "decision_date": str(frame["decision_date"].iloc[0]) if len(frame) else "none",
            **{f"action/{action}": int(n) for action, n in sorted(counts.items())},
            "holdout": int(frame["is_holdout"].sum()) if len(frame) else 0,
            "spend_usd": decided.spent_usd,
            "estimates": _table(estimates.table().round(5), rows=40),
            "notes": md_list(notes),
            "preview": _table(
                frame[frame["action"] != "no_action"] if len(frame) else frame,
                ["customer_id", "action", "priority", "p_response", "detail"],
            ),
        }
    )
