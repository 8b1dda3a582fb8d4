"""The daily experiments update over a warehouse connection: read, allocate, assign, write.

Used by the Dagster assets (source ``warehouse``) and by the closed loop (``raw`` in fast mode).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from mos_pipelines.configuration.experiments import ExperimentsSettings
from mos_pipelines.experiments import allocation_tables
from mos_pipelines.experiments.allocation import aggregate, allocate, shares_by_segment
from mos_pipelines.experiments.assignment import assign_units, normalise_unit
from mos_pipelines.experiments.bandit import estimate_value_shape
from mos_pipelines.experiments.budget import allocate_budget, allocate_budget_mmm, channel_totals
from mos_pipelines.experiments.outcomes import (
    Experiment,
    Source,
    data_through,
    load_experiments,
    unit_outcomes,
    unit_segments,
)


@dataclass
class BanditUpdate:
    allocation_date: datetime.date | None
    experiments: list[Experiment]
    allocations: pd.DataFrame
    treated_units: int


def default_allocation_date(con, source: Source) -> datetime.date | None:
    """The day after the last email event: today's allocation uses everything up to yesterday."""
    last = data_through(con, source)
    return None if last is None else last + datetime.timedelta(days=1)


def update_bandit(
    con, source: Source, config: ExperimentsSettings, allocation_date: datetime.date | None = None
) -> BanditUpdate:
    """Allocate every experiment × segment for ``allocation_date`` and write the rows."""
    allocation_tables.ensure_tables(con)
    experiments = load_experiments(con, source, config)
    allocation_date = allocation_date or default_allocation_date(con, source)
    if allocation_date is None or not experiments:
        return BanditUpdate(allocation_date, experiments, pd.DataFrame(), 0)
    outcomes = unit_outcomes(con, source, experiments, config, allocation_date)
    segments = unit_segments(con, source, outcomes["unit_id"], config.bandit.segment)
    totals = aggregate(outcomes, segments)
    shapes = {
        e.experiment_id: estimate_value_shape(
            outcomes.loc[
                (outcomes["experiment_id"] == e.experiment_id) & (outcomes["successes"] > 0), "value_usd"
            ].to_numpy()
        )
        for e in experiments
        if e.goal == "revenue"
    }
    previous = allocation_tables.previous_allocations(con, allocation_date)
    allocations = allocate(experiments, totals, previous, config.bandit, allocation_date, config.fingerprint(), shapes)
    allocation_tables.write_allocations(con, allocations, allocation_date)
    return BanditUpdate(allocation_date, experiments, allocations, int(outcomes["unit_id"].nunique()))


def assign(
    con,
    source: Source,
    config: ExperimentsSettings,
    experiments: list[Experiment],
    allocations: pd.DataFrame,
    audience: pd.DataFrame,
    allocation_date: datetime.date,
    replace: bool,
) -> pd.DataFrame:
    """Assign ``audience`` (experiment_id, recipient_email) and write ``experiments.assignments``.

    Returns experiment_id, unit_id, recipient_email, segment, buckets, is_holdout, variant_id.
    """
    allocation_tables.ensure_tables(con)
    frames = []
    audience = audience.assign(unit_id=normalise_unit(audience["recipient_email"])).dropna(subset=["unit_id"])
    segments = unit_segments(con, source, audience["unit_id"], config.bandit.segment)
    for experiment in experiments:
        members = audience[audience["experiment_id"] == experiment.experiment_id].drop_duplicates("unit_id")
        if members.empty:
            continue
        units = pd.DataFrame(
            {
                "unit_id": members["unit_id"].to_numpy(),
                "segment": members["unit_id"].map(segments).fillna("unknown").to_numpy(),
            }
        )
        assigned = assign_units(
            units,
            experiment.experiment_id,
            experiment.variants,
            experiment.holdout_variant,
            experiment.holdout_share,
            shares_by_segment(allocations, experiment),
            config.assignment.salt,
        )
        assigned.insert(0, "experiment_id", experiment.experiment_id)
        assigned["recipient_email"] = members["recipient_email"].to_numpy()
        frames.append(assigned)
    if not frames:
        return pd.DataFrame(
            columns=[
                "experiment_id",
                "unit_id",
                "segment",
                "holdout_bucket",
                "arm_bucket",
                "is_holdout",
                "variant_id",
                "recipient_email",
            ]
        )
    result = pd.concat(frames, ignore_index=True)
    rows = result.drop(columns=["recipient_email"]).assign(allocation_date=allocation_date)
    allocation_tables.write_assignments(con, rows, [e.experiment_id for e in experiments] if replace else None)
    return result


def warehouse_audience(con, experiments: list[Experiment]) -> pd.DataFrame:
    """Who each experiment may reach: every address its campaign has emailed, and every customer with
    an email address and email-marketing consent (experiment_id, recipient_email)."""
    if not experiments:
        return pd.DataFrame(columns=["experiment_id", "recipient_email"])
    con.register("_experiment_ids", pd.DataFrame({"experiment_id": [e.experiment_id for e in experiments]}))
    try:
        return con.execute("""
            with recipients as (
                select distinct campaign_id as experiment_id, lower(trim(recipient_email)) as recipient_email
                from staging.stg_esp__email_events
                where campaign_id in (select experiment_id from _experiment_ids)
            ),
            consented as (
                select distinct lower(trim(customers.email)) as recipient_email
                from marts.dim_customers as customers
                inner join marts.dim_customer_consents as consent
                    on customers.customer_id = consent.customer_id
                    and consent.purpose = 'email_marketing' and consent.is_consented
                where nullif(trim(customers.email), '') is not null
            )
            select * from recipients
            union
            select _experiment_ids.experiment_id, consented.recipient_email from _experiment_ids cross join consented
            order by 1, 2
        """).df()
    finally:
        con.unregister("_experiment_ids")


def update_budget(con, config: ExperimentsSettings) -> tuple[pd.DataFrame, Mapping[str, float | str]]:
    """Allocate the configured budget for the day after the last day of channel performance."""
    allocation_tables.ensure_tables(con)
    totals, end = channel_totals(con, config.budget)
    if end is None:
        return pd.DataFrame(), {"reason": "no channel performance yet (marts.fct_channel_performance is empty)"}
    if not (totals["cost_usd"] > 0).any():
        return pd.DataFrame(), {
            "reason": f"no spend on any configured channel ({', '.join(config.budget.channels)}) "
            f"in the {config.budget.lookback_days} days to {end}: nothing to learn a "
            "return from (land ad spend under landing/ad_spend/<platform>/)"
        }
    allocation_date = end + datetime.timedelta(days=1)
    previous = allocation_tables.previous_budget(con, allocation_date)
    posterior, why = _mmm_curves(con, config.budget.channels)
    summary: dict[str, float | str]
    if posterior is not None:
        rows, summary = allocate_budget_mmm(
            totals, previous, config.budget, allocation_date, end, posterior, why, config.fingerprint()
        )
    else:
        rows, linear = allocate_budget(totals, previous, config.budget, allocation_date, end, config.fingerprint())
        summary = {**linear, "method": "thompson", "method_reason": f"returns linear in spend: {why}"}
    allocation_tables.write_budget(con, rows, allocation_date)
    return rows, summary


def _mmm_curves(con, channels: tuple[str, ...]):
    """The latest converged MMM's curves if they cover and size every budget channel, else None and why not."""
    from mos_pipelines.mmm.tables import MAX_ROI_SPREAD, latest_posterior, unidentified_channels

    posterior, note = latest_posterior(con)
    if posterior is None:
        return None, note
    missing = [c for c in channels if c not in posterior.channels]
    if missing:
        return None, f"the MMM has no curve for {', '.join(missing)} (too little spend in its window)"
    wide = unidentified_channels(con, channels)
    if wide:
        return None, (
            f"the MMM cannot size {', '.join(w.split(' ')[0] for w in wide)} (90 % ROI interval wider than "
            f"{MAX_ROI_SPREAD:g}×: {'; '.join(wide)})"
        )
    return posterior, note
