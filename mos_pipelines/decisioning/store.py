"""The warehouse side of decisioning: what the engine reads, and ``decisions.*``.

- ``decisions.next_best_action``: one row per person and decision day (a re-run on the same day replaces that
  day's rows; earlier days stay, they are what the learning reads).
- ``decisions.explanations``: every candidate of every decision with its terms and rules.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import duckdb
import pandas as pd

from mos_pipelines.configuration.policy import ContactSettings, PolicySettings
from mos_pipelines.configuration.transform import CustomerSegment
from mos_pipelines.decisioning import engine, learning
from mos_pipelines.policy import contact
from mos_pipelines.policy.routing import segment_sql
from mos_pipelines.policy.tables import naive_utc
from mos_pipelines.warehouse import columns_of, insert_frame, table_exists, transaction

DDL = """
create schema if not exists decisions;
create table if not exists decisions.next_best_action (
    decision_id varchar not null,
    customer_id varchar not null,
    decision_date date not null,
    decided_at timestamp not null,
    action varchar not null,
    arbitrated_action varchar not null,
    is_holdout boolean not null,
    priority double,
    p_response double,
    value_usd double,
    cost_usd double not null,
    detail varchar,
    reason varchar not null,
    cell varchar,
    policy_version varchar not null,
    estimates_version varchar not null
);
alter table decisions.next_best_action add column if not exists cell varchar;
create table if not exists decisions.explanations (
    decision_id varchar not null,
    customer_id varchar not null,
    decision_date date not null,
    candidate varchar not null,
    candidate_order integer not null,
    cell varchar not null,
    p_response double not null,
    p_source varchar not null,
    p_baseline double not null,
    alpha double not null,
    beta double not null,
    value_usd double not null,
    context_weight double not null,
    lever double not null,
    priority double not null,
    cost_usd double not null,
    threshold double not null,
    eligible boolean not null,
    rules_passed varchar[] not null,
    rules_failed varchar[] not null,
    rank integer not null,
    chosen boolean not null,
    detail varchar
);
"""


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def load_persons(
    con: duckdb.DuckDBPyConnection,
    settings: PolicySettings,
    bands: Sequence[CustomerSegment],
    tiers: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Every customer with what the contact policy, the cells, the context weights and the action details read.
    A column the warehouse lacks is null (a level of its own for the learning) and noted."""
    persons, notes = contact.load_persons(con, settings.contact, tiers)
    wanted = set(settings.decisioning.learning.cells) - {learning.RECENT_CONTACTS}
    for action in settings.decisioning.actions.values():
        wanted |= set(action.context_weights)
    wanted -= set(persons.columns)
    features = set(columns_of(con, "marts", "dim_customer_features"))
    if wanted:
        select = []
        for column in sorted(wanted):
            if column == "segment" and "account_contact_count" in features:
                select.append(f"{segment_sql(bands)} as segment")
            elif column in features:
                select.append(f"cast({column} as varchar) as {column}")
            else:
                select.append(f"cast(null as varchar) as {column}")
                notes.append(f"marts.dim_customer_features has no {column}: every person's {column} is unknown")
        extra = con.execute(
            f"select cast(customer_id as varchar) as customer_id, {', '.join(select)} from marts.dim_customer_features"
        ).df()
        persons = persons.merge(extra, on="customer_id", how="left")
    details = (
        (
            ("policy", "routing_assignments"),
            "select customer_id, rep_id || ' (' || role || ', rule ' || rule || ')' as detail_route_to_sales "
            "from policy.routing_assignments where is_current",
        ),
        (
            ("ml", "lookalike_scores"),
            "select customer_id, 'lookalike top ' || min(tier) || ' %' as detail_paid_retargeting "
            "from ml.lookalike_scores where tier is not null group by customer_id",
        ),
    )
    for (schema, table), sql in details:  # what each action would use: the lead's rep, the audience tier
        if table_exists(con, schema, table):
            persons = persons.merge(con.execute(sql).df(), on="customer_id", how="left")
    return persons, notes


def load_history(con: duckdb.DuckDBPyConnection, settings: PolicySettings, before: datetime.date) -> pd.DataFrame:
    """Every decision before ``before`` (an action taken, or no action: the baseline) with its cell and whether a
    counted conversion followed within the window (a conversion in the window of several decisions counts for
    each)."""
    empty = pd.DataFrame({"action": [], "cell": [], "responded": []})
    if not table_exists(con, "decisions", "next_best_action"):
        return empty
    learning_ = settings.decisioning.learning
    types = ", ".join("'" + t.replace("'", "''") + "'" for t in learning_.conversions)
    window = int(learning_.window_days)
    conversions = (
        f"""left join marts.fct_conversions c on c.customer_id = d.customer_id and c.conversion_type in ({types})
            and c.converted_at > d.decided_at and c.converted_at <= d.decided_at + interval {window} day"""
        if table_exists(con, "marts", "fct_conversions")
        else "left join (select null as customer_id) c on false"
    )
    # a left join and a count, not a correlated EXISTS (a DuckDB 2.0.0 cache bug)
    sql = f"""
        select d.decision_id, d.action, d.cell, count(c.customer_id) > 0 as responded
        from decisions.next_best_action d
        {conversions}
        where d.decision_date < ? and d.cell is not null
        group by d.decision_id, d.action, d.cell
    """
    frame = con.execute(sql, [before]).df()
    frame["responded"] = frame["responded"].astype(int)
    return frame


def load_taken_once(con: duckdb.DuckDBPyConnection, settings: PolicySettings, before: datetime.date) -> pd.DataFrame:
    once = [name for name, a in settings.decisioning.actions.items() if a.once]
    if not once or not table_exists(con, "decisions", "next_best_action"):
        return pd.DataFrame({"customer_id": [], "action": []})
    marks = ", ".join("?" for _ in once)
    return con.execute(
        f"select distinct customer_id, action from decisions.next_best_action where action in ({marks}) "
        "and decision_date < ?",
        [*once, before],
    ).df()


def decision_time_rules(settings: PolicySettings) -> ContactSettings:
    """The contact policy as it applies when the day's decisions are made: everything but quiet hours, which are
    about the moment of sending (the delivery holds a send until the person's quiet hours end)."""
    actions = {name: a.model_copy(update={"quiet_hours": False}) for name, a in settings.contact.actions.items()}
    return settings.contact.model_copy(update={"actions": actions})


def run(
    con: duckdb.DuckDBPyConnection,
    settings: PolicySettings,
    bands: Sequence[CustomerSegment],
    version: str,
    now: datetime.datetime,
    tiers: pd.DataFrame | None = None,
) -> tuple[engine.Decisions, learning.Estimates, list[str]]:
    """The decisions for ``now``'s day (reads only)."""
    day = naive_utc(now).date()
    persons, notes = load_persons(con, settings, bands, tiers)
    at = naive_utc(now)
    contacts = contact.load_contacts(con)
    persons[learning.RECENT_CONTACTS] = learning.recent_contacts(contacts, persons["customer_id"], at).to_numpy()
    names = list(settings.decisioning.actions)
    requests = pd.DataFrame(
        {"customer_id": [c for c in persons["customer_id"] for _ in names], "action": names * len(persons), "at": at}
    )
    eligibility = contact.evaluate(
        requests,
        persons[list(contact.PERSON_COLUMNS)],
        contacts,
        contact.load_conversions(con, settings.contact.cooldown.after),
        decision_time_rules(settings),
    )
    estimates = learning.estimate(load_history(con, settings, day), settings.decisioning)
    decided = engine.decide(
        persons,
        eligibility,
        estimates,
        settings.decisioning,
        day,
        version,
        at,
        load_taken_once(con, settings, day),
    )
    return decided, estimates, notes


def write(con: duckdb.DuckDBPyConnection, decided: engine.Decisions, explanations_days: int = 35) -> None:
    """Replace the decision day's rows with ``decided``; explanations older than ``explanations_days`` decision
    days go (a person × candidate × day table grows fast; the decisions, with their cell, stay for learning)."""
    ensure_tables(con)
    if decided.decisions.empty:
        return
    day = decided.decisions["decision_date"].iloc[0]
    with transaction(con):
        con.execute("delete from decisions.next_best_action where decision_date = ?", [day])
        con.execute("delete from decisions.explanations where decision_date = ?", [day])
        insert_frame(con, "decisions.next_best_action", decided.decisions)
        insert_frame(con, "decisions.explanations", decided.explanations)
        con.execute(
            "delete from decisions.explanations where decision_date <= ?",
            [day - datetime.timedelta(days=explanations_days)],
        )
