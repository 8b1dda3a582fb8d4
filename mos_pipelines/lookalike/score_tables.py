"""Warehouse tables of the lookalike capability: scores, model runs, the latest fit's evaluation rows, and
degradation notifications.

``ml.lookalike_evaluation`` holds, per audience, the held-out seed members (``is_seed``) and the unseen
population members of the latest fit with their scores and weights (each row stands for ``weight``
members of seed ∪ population), so a notebook can redraw the distribution, lift and calibration charts
and recompute the AUC of ``ml.model_runs`` without the model."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import pandas as pd

from mos_pipelines.lookalike.audiences import AudienceResult
from mos_pipelines.warehouse import insert_frame, transaction

DDL = """
create schema if not exists ml;
create schema if not exists insights;
create table if not exists ml.lookalike_scores (
    customer_id varchar not null,
    audience varchar not null,
    score double not null,
    percentile double not null,
    tier integer,
    model_version varchar not null,
    scored_at timestamptz not null,
    primary key (audience, customer_id)
);
create table if not exists ml.model_runs (
    model_run_id varchar primary key,
    audience varchar not null,
    run_id varchar not null,
    model_version varchar not null,
    model_kind varchar not null,
    definition_hash varchar not null,
    status varchar not null,
    status_reason varchar,
    seed_size integer, population_size integer, train_seed integer, train_negatives integer,
    holdout_seed integer, eval_population integer,
    auc double, average_precision double, recall_at_10 double, lift_at_10 double,
    recall_at_tiers json, lift_at_tiers json,
    true_propensity_auc double, true_propensity_spearman double,
    feature_importances json, seconds json,
    compared_with_run varchar,
    fitted_at timestamptz not null
);
alter table ml.model_runs add column if not exists auc_ci_low double;
alter table ml.model_runs add column if not exists auc_ci_high double;
alter table ml.model_runs add column if not exists true_propensity_gap_ci_low double;
alter table ml.model_runs add column if not exists true_propensity_gap_ci_high double;
alter table ml.model_runs add column if not exists wider_train_seed integer;
alter table ml.model_runs add column if not exists wider_train_negatives integer;
create table if not exists ml.lookalike_evaluation (
    audience varchar not null,
    customer_id varchar not null,
    model_run_id varchar not null,
    is_seed boolean not null,
    score double not null,
    weight double not null,
    true_propensity double,
    primary key (audience, customer_id)
);
create table if not exists insights.notifications (
    notification_id varchar primary key,
    created_at timestamptz not null,
    source varchar not null,
    severity varchar not null,
    subject varchar,
    title varchar not null,
    message varchar not null,
    metric varchar,
    figure double,
    previous_figure double,
    suggested_action varchar,
    status varchar not null
);
"""


def ensure_tables(con) -> None:
    con.execute(DDL)


def last_accepted_run(con, audience: str, definition_hash: str) -> dict[str, Any] | None:
    """The baseline a new fit is judged against: the latest accepted fit of the same definition (a changed
    seed, population, feature list or model setting starts a new baseline instead of a false alarm)."""
    frame = con.execute(
        """select * from ml.model_runs where audience = ? and definition_hash = ? and status = 'accepted'
        order by fitted_at desc, model_run_id desc limit 1""",
        [audience, definition_hash],
    ).df()
    return None if frame.empty else frame.iloc[0].to_dict()


def write_result(con, result: AudienceResult, row: dict[str, Any]) -> None:
    """Replace the audience's scores and evaluation rows and append its model run (one transaction)."""
    with transaction(con):
        con.execute("delete from ml.lookalike_scores where audience = ?", [result.audience.name])
        scores = result.scores[["customer_id", "audience", "score", "percentile", "tier", "model_version", "scored_at"]]
        insert_frame(con, "ml.lookalike_scores", scores)
        con.execute("delete from ml.lookalike_evaluation where audience = ?", [result.audience.name])
        insert_frame(con, "ml.lookalike_evaluation", result.evaluation.assign(model_run_id=row["model_run_id"]))
        insert_frame(con, "ml.model_runs", pd.DataFrame([row]), replace=True)


def write_skipped(con, audience: str, row: dict[str, Any]) -> None:
    """An audience that could not be fitted: its scores and evaluation rows go (activation must not act on a
    model the current data cannot support) and a ``skipped`` model run says why."""
    with transaction(con):
        con.execute("delete from ml.lookalike_scores where audience = ?", [audience])
        con.execute("delete from ml.lookalike_evaluation where audience = ?", [audience])
        insert_frame(con, "ml.model_runs", pd.DataFrame([row]), replace=True)


def degradation_notification_id(model_run_id: str) -> str:
    """The id of the notification a degraded model run raises (the insights flow routes it by this id)."""
    return hashlib.sha256(f"lookalike_degraded:{model_run_id}".encode()).hexdigest()[:16]


DEGRADATION_ACTION = (
    "Check recent changes to the seed definition and to dim_customer_features (a feature that drifted or "
    "went missing), then re-run the audience; if the new data is right, accept the new model."
)


def notify_degradation(con, result: AudienceResult, model_run_id: str, created_at: datetime.datetime) -> str:
    """One row in insights.notifications saying what dropped, from what, and what to do (the first metric
    that dropped is the row's figure; the message names every one)."""
    metric, figure, previous = result.dropped[0]
    notification_id = degradation_notification_id(model_run_id)
    message = (
        f"The lookalike model for audience '{result.audience.name}' got worse: {'; '.join(result.reasons)}. "
        f"Its scores are held back from activation until a fit is accepted again."
    )
    # Columns named: the insights flow adds its own columns to this table (reader, insight, rank …).
    con.execute(
        """insert or replace into insights.notifications (notification_id, created_at, source, severity, subject,
        title, message, metric, figure, previous_figure, suggested_action, status)
        values (?, ?, 'lookalike', 'warning', ?, ?, ?, ?, ?, ?, ?, 'new')""",
        [
            notification_id,
            created_at,
            result.audience.name,
            f"Lookalike audience {result.audience.name} degraded",
            message,
            metric,
            figure,
            previous,
            DEGRADATION_ACTION,
        ],
    )
    return notification_id


def latest_statuses(con) -> pd.DataFrame:
    """Per audience, the status of its latest model run."""
    return con.execute(
        """select audience, status, status_reason, model_run_id from ml.model_runs
        qualify row_number() over (partition by audience order by fitted_at desc, model_run_id desc) = 1
        order by audience"""
    ).df()
