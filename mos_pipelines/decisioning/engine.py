"""Arbitration: one next best action per person and day, and every candidate's terms.

For each person and each action of ``decisioning.actions``:

    priority = (P(response | action, person) − P(response | no action, person)) × value_usd × context weight × lever

P is the action × cell posterior of ``learning`` (a seeded draw from it under ``exploration: thompson``, so the
same person, day and action always draw the same number; its mean under ``mean``); P(response | no action) is the
cell's posterior mean of what people no action reached did (never below zero lift). A candidate is eligible when the
contact policy allows it (consent, stage, tier, caps, quiet hours, cool-down: the reasons come from
``policy.contact.evaluate``), a ``once`` action was not taken before, and its priority reaches ``min_return`` ×
(``cost_usd`` + ``attention_cost_usd``). The eligible candidate with the highest priority wins (ties: the action's order in the policy); with a
daily budget or a cap on the day's actions, people are served in order of their best priority and a candidate
whose cost no longer fits, or that finds the day's actions taken, is refused with that reason. Persons in the persistent holdout get no action; their explanation still shows what
arbitration would have chosen. ``rescore`` recomputes a choice from the stored explanation rows alone.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

import numpy as np
import pandas as pd
from scipy.special import betaincinv

from mos_pipelines.configuration.policy import DecisioningSettings
from mos_pipelines.decisioning.learning import NO_ACTION, Estimates, cell_keys

HOLDOUT_REASON = "decisioning holdout (persistent)"


@dataclass
class Decisions:
    decisions: pd.DataFrame  # one row per person
    explanations: pd.DataFrame  # one row per person × candidate action
    spent_usd: float


def _unit(text: pd.Series) -> np.ndarray:
    """A uniform number in (0, 1) per text, from its sha256 (stable across runs and machines)."""
    values = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big") for t in text]
    return (np.asarray(values, dtype=np.float64) + 0.5) / 2.0**64


def in_holdout(customer_ids: pd.Series, settings: DecisioningSettings) -> pd.Series:
    """Whether each person is in the persistent decisioning holdout."""
    if settings.holdout.share <= 0:
        return pd.Series(False, index=customer_ids.index)
    return pd.Series(
        _unit(settings.holdout.salt + ":" + customer_ids.astype(str)) < settings.holdout.share, index=customer_ids.index
    )


def decision_id(customer_id: str, day: datetime.date) -> str:
    return hashlib.sha256(f"{customer_id}:{day.isoformat()}".encode()).hexdigest()[:16]


def _weights(persons: pd.DataFrame, weights: dict[str, dict[str, float]]) -> pd.Series:
    out = pd.Series(1.0, index=persons.index)
    for column, by_value in weights.items():
        if column in persons:
            out = out * persons[column].astype(object).map(
                lambda v, m=by_value: m.get(str(v), 1.0) if v is not None else 1.0
            ).astype(float)
    return out


def candidates(
    persons: pd.DataFrame,
    eligibility: pd.DataFrame,
    estimates: Estimates,
    settings: DecisioningSettings,
    day: datetime.date,
    taken_once: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per person × action with the terms of its priority and the rules it passed and failed."""
    people = persons.reset_index(drop=True).copy()
    people["customer_id"] = people["customer_id"].astype(str)
    _one_row_per(people, ["customer_id"], "persons")
    answered = eligibility.assign(customer_id=eligibility["customer_id"].astype(str))
    _one_row_per(answered, ["customer_id", "action"], "eligibility")
    cells = cell_keys(people, settings.learning.cells)
    unique_cells = list(dict.fromkeys(cells))
    # the contact policy's answer per action, by customer
    by_action = {name: rows.set_index("customer_id") for name, rows in answered.groupby("action", sort=False)}
    once_taken = (
        taken_once.assign(customer_id=taken_once["customer_id"].astype(str)).groupby("action")["customer_id"].agg(set)
        if taken_once is not None and len(taken_once)
        else pd.Series(dtype=object)
    )
    base = {c: estimates.posterior(NO_ACTION, c) for c in unique_cells}
    baseline = cells.map({c: a / (a + b) for c, (a, b, _) in base.items()}).astype(float)
    frames = []
    for order, (name, action) in enumerate(settings.actions.items()):
        frame = pd.DataFrame(
            {
                "customer_id": people["customer_id"],
                "candidate": name,
                "candidate_order": order,
                "cell": cells,
                "value_usd": action.value_usd,
                "cost_usd": action.cost_usd,
                "lever": action.lever,
                "context_weight": _weights(people, action.context_weights),
                "detail": people[f"detail_{name}"] if f"detail_{name}" in people else None,
            }
        )
        posterior = {c: estimates.posterior(name, c) for c in unique_cells}
        frame["alpha"] = cells.map({c: p[0] for c, p in posterior.items()}).astype(float)
        frame["beta"] = cells.map({c: p[1] for c, p in posterior.items()}).astype(float)
        frame["p_source"] = cells.map({c: p[2] for c, p in posterior.items()})
        if settings.exploration == "thompson":
            u = _unit(frame["customer_id"] + f":{day.isoformat()}:{name}")
            frame["p_response"] = betaincinv(frame["alpha"].to_numpy(), frame["beta"].to_numpy(), u)
            frame["p_source"] = "posterior draw, " + frame["p_source"]
        else:
            frame["p_response"] = frame["alpha"] / (frame["alpha"] + frame["beta"])
            frame["p_source"] = "posterior mean, " + frame["p_source"]
        frame["p_baseline"] = baseline
        frame["lift"] = (frame["p_response"] - frame["p_baseline"]).clip(lower=0.0)
        frame["priority"] = frame["lift"] * frame["value_usd"] * frame["context_weight"] * frame["lever"]
        frame["threshold"] = settings.min_return * (action.cost_usd + action.attention_cost_usd)
        answer = by_action.get(name)
        ok: list[bool] = [False] * len(people)
        reasons: list[object] = [None] * len(people)
        if answer is not None:
            ok = people["customer_id"].map(answer["allowed"]).eq(True).tolist()
            reasons = people["customer_id"].map(answer["reasons"]).tolist()
        failed = [
            [] if allowed else [f"contact policy: {r}" for r in (why if _given(why) else _UNEVALUATED)]
            for allowed, why in zip(ok, reasons, strict=True)
        ]
        passed = [["contact policy"] if allowed else [] for allowed in ok]
        if action.once:
            taken = people["customer_id"].isin(once_taken.get(name, ())).to_numpy()
            for row in np.flatnonzero(taken):
                failed[row].append("once: already taken")
            for row in np.flatnonzero(~taken):
                passed[row].append("once")
        reaches = (frame["priority"] >= frame["threshold"]).to_numpy()
        for row in np.flatnonzero(reaches):
            passed[row].append("min_return")
        costs = f"{settings.min_return:g} × (cost {action.cost_usd:g} + attention {action.attention_cost_usd:g})"
        for row, priority in zip(np.flatnonzero(~reaches), frame["priority"].to_numpy()[~reaches], strict=True):
            failed[row].append(f"min_return: priority {priority:.4g} below {costs}")
        frame["rules_passed"] = passed
        frame["rules_failed"] = failed
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["eligible"] = out["rules_failed"].map(len) == 0
    return out


_UNEVALUATED = ("no contact-policy evaluation",)


def _given(reasons: object) -> TypeGuard[Iterable[str]]:
    """Whether the contact policy gave reasons (a list of them) rather than none at all (None, or NaN: no row)."""
    return reasons is not None and not isinstance(reasons, float)


def _one_row_per(frame: pd.DataFrame, key: list[str], what: str) -> None:
    """A person or a (person, action) twice would be decided twice, or against either of two answers: refused."""
    repeated = frame[frame.duplicated(key, keep=False)]
    if len(repeated):
        first = ", ".join(str(v) for v in repeated[key].iloc[0])
        raise ValueError(f"{what}: {len(repeated)} rows repeat a {' × '.join(key)} (first: {first}); one row each")


def arbitrate(
    candidate_rows: pd.DataFrame,
    settings: DecisioningSettings,
    day: datetime.date,
    holdout: pd.Series,
    policy_version: str,
    estimates_version: str,
    decided_at: datetime.datetime,
) -> Decisions:
    """Choose per person (see the module docstring); ``holdout``: customer_id -> bool."""
    rows = candidate_rows.sort_values(["customer_id", "priority", "candidate_order"], ascending=[True, False, True])
    rows = rows.reset_index(drop=True)
    rows["rank"] = rows.groupby("customer_id").cumcount() + 1
    rows["chosen"] = False
    budget = settings.daily_budget_usd
    remaining = float("inf") if budget is None else float(budget)
    spent = 0.0
    eligible = rows[rows["eligible"]]
    best = eligible.groupby("customer_id")["priority"].max().sort_values(ascending=False, kind="stable")
    chosen_index: dict[str, int] = {}
    labels = eligible.index.to_numpy()
    groups = {cid: labels[at] for cid, at in eligible.groupby("customer_id", sort=False).indices.items()}
    costs = rows["cost_usd"].astype(float).to_numpy()
    refused: dict[int, str] = {}
    slots = settings.daily_actions
    held = {customer: bool(h) for customer, h in holdout.items()}
    for customer in best.index:  # highest best priority first: the budget and the day's actions serve them first
        held_out = held.get(customer, False)
        for index in groups[customer]:
            cost = float(costs[index])
            if held_out or (cost <= remaining + 1e-9 and (slots is None or slots > 0)):
                chosen_index[customer] = index
                if not held_out:
                    remaining -= cost
                    spent += cost
                    slots = None if slots is None else slots - 1
                break
            refused[index] = (
                f"daily actions: all {settings.daily_actions} taken"
                if slots is not None and slots <= 0
                else f"daily budget: cost {cost:g} above the {max(remaining, 0):.2f} left"
            )
    if refused:
        at = list(refused)
        rows.loc[at, "rules_failed"] = pd.Series(
            [[*rows.at[i, "rules_failed"], why] for i, why in refused.items()], index=at, dtype=object
        )
        rows.loc[at, "eligible"] = False
    rows.loc[list(chosen_index.values()), "chosen"] = True
    rows["decision_date"] = day
    customers = rows["customer_id"].drop_duplicates()
    rows["decision_id"] = rows["customer_id"].map(
        pd.Series([decision_id(c, day) for c in customers], index=customers.to_numpy())
    )

    people = rows.drop_duplicates("customer_id")[["customer_id", "decision_id", "cell"]].reset_index(drop=True)
    picked = {
        c["customer_id"]: c
        for c in rows.loc[
            rows["chosen"], ["customer_id", "candidate", "priority", "p_response", "value_usd", "cost_usd", "detail"]
        ].to_dict("records")
    }
    records = []
    for customer, did, cell in people.itertuples(index=False):
        terms: tuple[float | None, ...]
        is_holdout = held.get(customer, False)
        if customer in picked:
            c = picked[customer]
            arbitrated = c["candidate"]
            terms = (float(c["priority"]), float(c["p_response"]), float(c["value_usd"]), float(c["cost_usd"]))
            detail = c["detail"] if isinstance(c["detail"], str) else None
        else:
            arbitrated, terms, detail = NO_ACTION, (None, None, None, None), None
        if is_holdout:
            action, reason = NO_ACTION, HOLDOUT_REASON
        elif arbitrated == NO_ACTION:
            action, reason = NO_ACTION, "no candidate passed every rule"
        else:
            action, reason = arbitrated, "highest priority of the eligible candidates"
        records.append(
            {
                "decision_id": did,
                "customer_id": customer,
                "decision_date": day,
                "decided_at": decided_at,
                "action": action,
                "arbitrated_action": arbitrated,
                "is_holdout": is_holdout,
                "priority": terms[0],
                "p_response": terms[1],
                "value_usd": terms[2],
                "cost_usd": terms[3] if action != NO_ACTION else 0.0,
                "detail": detail if action != NO_ACTION else None,
                "reason": reason,
                "cell": cell,
                "policy_version": policy_version,
                "estimates_version": estimates_version,
            }
        )
    explanations = rows[
        [
            "decision_id",
            "customer_id",
            "decision_date",
            "candidate",
            "candidate_order",
            "cell",
            "p_response",
            "p_source",
            "p_baseline",
            "alpha",
            "beta",
            "value_usd",
            "context_weight",
            "lever",
            "priority",
            "cost_usd",
            "threshold",
            "eligible",
            "rules_passed",
            "rules_failed",
            "rank",
            "chosen",
        ]
    ].assign(detail=rows["detail"].astype(object).where(rows["detail"].notna(), None))
    return Decisions(pd.DataFrame.from_records(records), explanations, round(spent, 6))


def decide(
    persons: pd.DataFrame,
    eligibility: pd.DataFrame,
    estimates: Estimates,
    settings: DecisioningSettings,
    day: datetime.date,
    policy_version: str,
    decided_at: datetime.datetime,
    taken_once: pd.DataFrame | None = None,
) -> Decisions:
    """The day's decisions for ``persons`` (``customer_id`` plus the attributes the cells and context weights read,
    and optional ``detail_<action>`` columns: the rep, variant or audience tier the action would use)."""
    if persons.empty:
        return Decisions(pd.DataFrame(), pd.DataFrame(), 0.0)
    rows = candidates(persons, eligibility, estimates, settings, day, taken_once)
    ids = persons["customer_id"].astype(str)
    holdout = pd.Series(in_holdout(ids, settings).to_numpy(), index=ids.to_numpy())
    return arbitrate(rows, settings, day, holdout, policy_version, estimates.version(), decided_at)


def rescore(explanation: pd.DataFrame) -> str:
    """The action arbitration chooses from one decision's stored explanation rows: the eligible candidate with the
    highest priority recomputed from its terms (ties: policy order), else no action."""
    rows = explanation.assign(
        recomputed=(explanation["p_response"] - explanation["p_baseline"]).clip(lower=0.0)
        * explanation["value_usd"]
        * explanation["context_weight"]
        * explanation["lever"]
    )
    ok = rows[
        [
            len(f) == 0 and p >= t
            for f, p, t in zip(rows["rules_failed"], rows["recomputed"], rows["threshold"], strict=True)
        ]
    ]
    if ok.empty:
        return NO_ACTION
    return str(ok.sort_values(["recomputed", "candidate_order"], ascending=[False, True]).iloc[0]["candidate"])
