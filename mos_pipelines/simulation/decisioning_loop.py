"""Closed loop for decisioning: the next best action against today's stage-filter syncs, same people, same
contact policy, same money, scored against a known truth.

Every simulated day each policy picks contacts, a delivery guard checks each send against the full contact policy
at its send time (the person's local ``SEND_HOUR``; caps, quiet hours, cool-down: ``policy.contact.evaluate``)
and drops what it refuses, the truth answers, and the next day's decisions learn from what happened.

- **Stage filters** (today's sync models): the nurture email to every consenting subscriber, lead and MQL once
  (the email ledger sends a row once), every lead to sales once (the CRM sync), every consenting person of a
  lookalike tier in the retargeting audience every day (a person-day of impressions); churn risk triggers nothing.
- **Next best action** (``decisioning.engine``, the asset's own code): one action per person and day, P learned
  from its own record (``decisioning.learning``), a persistent holdout, and a daily budget and number of actions
  equal to the stage filters' spend and contacts per day; each action's value is what the world pays for the
  conversion it brings (a marketer states those), the response rates it must learn.

The truth (``Truth``) is a daily conversion chance per person from their stage, raised by an action by an amount
that depends on the person (fit tier, stage, lookalike tier, churn risk, a hidden propensity the policies never
see) and falls with repeated contact (fatigue). Both policies face the same uniform draw per person and day
(common random numbers), so differences are the policies', not the dice's.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mos_pipelines.configuration.policy import PolicySettings
from mos_pipelines.decisioning import engine, learning
from mos_pipelines.policy import contact

SEND_HOUR = 10  # local time a day's sends go out
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Truth:
    """The simulated world's response, per scenario; the policies never read it."""

    name: str
    base: dict[str, float]  # daily conversion chance by lifecycle stage
    sales_lift: float = 0.06  # extra chance when a lead is handed to sales, × fit
    sales_fit: dict[str, float] = field(default_factory=lambda: {"A": 1.0, "B": 0.6, "C": 0.2, "D": 0.05})
    email_lift: float = 0.004
    email_fatigue: float = 0.6  # each email in the last 7 days multiplies the next one's lift
    retargeting_lift: float = 0.002
    retargeting_by_tier: dict[int, float] = field(default_factory=lambda: {1: 4.0, 2: 3.0, 3: 2.5, 5: 1.5})
    retargeting_fatigue: float = 0.85
    reengagement_lift: float = 0.03
    values: dict[str, float] = field(default_factory=lambda: {"route_to_sales": 1200.0})
    default_value: float = 150.0

    def extra(self, action: str, person: pd.Series, recent: int) -> float:
        stage, tier = person.get("lifecycle_stage"), person.get("tier")
        hidden = float(person["hidden"])
        if action == "route_to_sales":
            if stage not in ("lead", "mql", "sql", "opportunity"):
                return 0.0
            return self.sales_lift * self.sales_fit.get(str(tier), 0.05) * hidden
        if action in ("nurture_email", "reengagement_email"):
            if action == "reengagement_email":
                lift = self.reengagement_lift if stage == "churn_risk" else self.email_lift * 0.3
            else:
                lift = self.email_lift * (1.5 if stage in ("lead", "mql") else 1.0)
            return lift * hidden * self.email_fatigue**recent
        if action == "paid_retargeting":
            tier_ = person.get("lookalike_tier")
            factor = self.retargeting_by_tier.get(int(tier_), 1.0) if pd.notna(tier_) else 0.5
            return self.retargeting_lift * factor * hidden * self.retargeting_fatigue**recent
        return 0.0


SCENARIOS = {
    "b2b": Truth(
        "b2b",
        base={
            "visitor": 0.0003,
            "subscriber": 0.0008,
            "lead": 0.0015,
            "mql": 0.003,
            "sql": 0.006,
            "opportunity": 0.01,
            "customer": 0.002,
            "churn_risk": 0.0005,
        },
    ),
    # more churn risk, weaker sales hand-offs, stronger email fatigue
    "retention": Truth(
        "retention",
        base={
            "visitor": 0.0003,
            "subscriber": 0.0006,
            "lead": 0.001,
            "mql": 0.002,
            "sql": 0.004,
            "opportunity": 0.008,
            "customer": 0.002,
            "churn_risk": 0.0008,
        },
        sales_lift=0.03,
        email_fatigue=0.4,
        reengagement_lift=0.05,
    ),
}

CHANNEL_OF = {"route_to_sales": "webhook", "nurture_email": "email", "reengagement_email": "email"}


@dataclass
class PolicyRun:
    policy: str
    contacts: int = 0  # sends that reached a person (emails, hand-offs to sales, retargeting person-days)
    spend_usd: float = 0.0
    conversions: int = 0
    value_usd: float = 0.0
    refused_by_guard: int = 0
    ledger: list[dict] = field(default_factory=list)  # counted-channel sends: customer_id, channel, contacted_at
    by_action: dict[str, int] = field(default_factory=dict)
    converted: set[str] = field(default_factory=set)
    conversion_log: list[tuple[str, datetime.datetime]] = field(default_factory=list)
    expected: dict[str, float] = field(default_factory=dict)  # the truth's chance summed over a person's days


@dataclass
class LoopOutcome:
    scenario: str
    days: int
    people: int
    budget_per_day_usd: float
    runs: dict[str, PolicyRun]
    holdout: dict[str, float]  # treated / holdout conversion rates, lift and its interval

    def table(self) -> pd.DataFrame:
        rows = []
        for run in self.runs.values():
            rows.append(
                {
                    "scenario": self.scenario,
                    "policy": run.policy,
                    "contacts": run.contacts,
                    "spend_usd": round(run.spend_usd, 2),
                    "conversions": run.conversions,
                    "expected_conversions": round(sum(run.expected.values()), 1),
                    "value_usd": round(run.value_usd, 2),
                    "conversions_per_100_contacts": round(100 * run.conversions / max(run.contacts, 1), 3),
                    "conversions_per_1000_usd": round(1000 * run.conversions / max(run.spend_usd, 1e-9), 3),
                    "expected_per_100_contacts": round(100 * sum(run.expected.values()) / max(run.contacts, 1), 3),
                    "expected_per_1000_usd": round(1000 * sum(run.expected.values()) / max(run.spend_usd, 1e-9), 3),
                    "refused_by_guard": run.refused_by_guard,
                }
            )
        return pd.DataFrame(rows)


def _persons_at(persons: pd.DataFrame, converted: set[str]) -> pd.DataFrame:
    """A person who converted became a customer (opportunities and leads) for the rest of the run."""
    out = persons.copy()
    moved = out["customer_id"].isin(converted) & out["lifecycle_stage"].isin(
        ["visitor", "subscriber", "lead", "mql", "sql", "opportunity", "churn_risk"]
    )
    out.loc[moved, "lifecycle_stage"] = "customer"
    return out


def _send_times(persons: pd.DataFrame, day: datetime.date) -> pd.Series:
    """Each person's local SEND_HOUR on ``day``, as naive UTC."""
    local = pd.Timestamp(datetime.datetime.combine(day, datetime.time(SEND_HOUR)))
    out = {}
    for zone, index in persons.groupby("time_zone").groups.items():
        utc = local.tz_localize(str(zone)).tz_convert("UTC").tz_localize(None)
        for i in index:
            out[i] = utc
    return pd.Series(out).reindex(persons.index)


def _guard(
    requests: pd.DataFrame, persons: pd.DataFrame, run: PolicyRun, conversions: pd.DataFrame, settings: PolicySettings
) -> pd.DataFrame:
    """The requests the full contact policy allows at their send time (the delivery's check)."""
    if requests.empty:
        return requests
    ledger = pd.DataFrame(run.ledger, columns=["customer_id", "channel", "contacted_at"])
    checked = contact.evaluate(
        requests[["customer_id", "action", "at"]],
        persons[list(contact.PERSON_COLUMNS)],
        ledger,
        conversions,
        settings.contact,
    )
    allowed = checked["allowed"].to_numpy()
    run.refused_by_guard += int((~allowed).sum())
    return requests[allowed]


def run_loop(
    persons: pd.DataFrame,
    settings: PolicySettings,
    truth: Truth,
    days: int = 30,
    seed: int = 7,
    start: datetime.date = datetime.date(2026, 3, 2),
) -> LoopOutcome:
    """``persons``: ``customer_id`` and what ``contact.load_persons`` gives (time zone, stage, tier, consents), plus
    ``lookalike_tier`` (number or null) and any cell / context-weight columns."""
    people = persons.reset_index(drop=True).copy()
    rng = np.random.default_rng(seed)
    people["hidden"] = rng.lognormal(mean=-0.125, sigma=0.5, size=len(people))  # mean 1, unseen by the policies
    draws = rng.random((days, len(people)))  # common random numbers: one uniform per person and day
    people["detail_paid_retargeting"] = people["lookalike_tier"].map(
        lambda t: f"lookalike top {int(t)} %" if pd.notna(t) else None
    )
    counted = set(settings.contact.counted_channels)
    actions = settings.contact.actions

    def channel(action: str) -> str:
        return actions[action].channel

    def cost(action: str) -> float:
        return settings.decisioning.actions[action].cost_usd

    # -- stage filters first: their spend sets the next best action's budget ----------------------------------
    base_run = PolicyRun("stage_filters")
    sent_once: set[tuple[str, str]] = set()
    recent: dict[tuple[str, str], list[int]] = {}
    for day_index in range(days):
        day = start + datetime.timedelta(days=day_index)
        today = _persons_at(people, base_run.converted)
        at = _send_times(today, day)
        conversions = _conversions_frame(base_run)
        picked: dict[int, list[str]] = {}
        for action, wants in (
            ("nurture_email", today["lifecycle_stage"].isin(["subscriber", "lead", "mql"])),
            ("route_to_sales", today["lifecycle_stage"].isin(["lead", "mql", "sql", "opportunity"])),
            ("paid_retargeting", today["lookalike_tier"].notna()),
        ):
            once = action != "paid_retargeting"
            mask = wants & ~today["customer_id"].map(lambda c, a=action: (c, a) in sent_once) if once else wants
            requests = pd.DataFrame({"customer_id": today.loc[mask, "customer_id"], "action": action, "at": at[mask]})
            allowed = _guard(requests, today, base_run, conversions, settings)
            for index, row in allowed.iterrows():
                picked.setdefault(int(index), []).append(action)
                if once:
                    sent_once.add((row["customer_id"], action))
                if channel(action) in counted:
                    base_run.ledger.append(
                        {"customer_id": row["customer_id"], "channel": channel(action), "contacted_at": row["at"]}
                    )
        _respond(today, picked, day_index, draws, truth, base_run, recent, cost)
    budget = base_run.spend_usd / days
    volume = base_run.contacts // days

    # -- next best action ------------------------------------------------------------------------------------
    nba = PolicyRun("next_best_action")
    # the business's values are the world's (a marketer knows what a deal and an order are worth); P is learned
    valued = {
        name: action.model_copy(update={"value_usd": truth.values.get(name, truth.default_value)})
        for name, action in settings.decisioning.actions.items()
    }
    decisioning = settings.decisioning.model_copy(
        update={"daily_budget_usd": budget, "daily_actions": volume, "actions": valued}
    )
    history: list[dict] = []
    taken_once: list[dict] = []
    recent = {}
    holdout_ids = set(people.loc[engine.in_holdout(people["customer_id"], decisioning), "customer_id"])
    rules = _decision_time_rules(settings)
    for day_index in range(days):
        day = start + datetime.timedelta(days=day_index)
        today = _persons_at(people, nba.converted)
        at = _send_times(today, day)
        decided_at = pd.Timestamp(datetime.datetime.combine(day, datetime.time(6)))
        today[learning.RECENT_CONTACTS] = learning.recent_contacts(
            pd.DataFrame(nba.ledger, columns=["customer_id", "channel", "contacted_at"]),
            today["customer_id"],
            decided_at.to_pydatetime(),
        ).to_numpy()
        conversions = _conversions_frame(nba)
        names = list(decisioning.actions)
        requests = pd.DataFrame(
            {
                "customer_id": np.repeat(today["customer_id"].to_numpy(), len(names)),
                "action": names * len(today),
                "at": decided_at,
            }
        )
        eligibility = contact.evaluate(
            requests,
            today[list(contact.PERSON_COLUMNS)],
            pd.DataFrame(nba.ledger, columns=["customer_id", "channel", "contacted_at"]),
            conversions,
            rules,
        )
        estimates = learning.estimate(pd.DataFrame(history, columns=["action", "cell", "responded"]), decisioning)
        decided = engine.decide(
            today,
            eligibility,
            estimates,
            decisioning,
            day,
            "simulation",
            decided_at.to_pydatetime(),
            pd.DataFrame(taken_once, columns=["customer_id", "action"]),
        )
        acting = decided.decisions[decided.decisions["action"] != engine.NO_ACTION]
        index_of = pd.Series(today.index, index=today["customer_id"])
        requests = pd.DataFrame(
            {
                "customer_id": acting["customer_id"].to_numpy(),
                "action": acting["action"].to_numpy(),
                "at": at.loc[index_of.loc[acting["customer_id"]].to_numpy()].to_numpy(),
            }
        )
        allowed = _guard(requests, today, nba, conversions, settings)
        chosen: dict[int, list[str]] = {}
        for row in allowed.itertuples(index=False):
            index = int(index_of.loc[row.customer_id])
            chosen[index] = [row.action]
            if settings.decisioning.actions[row.action].once:
                taken_once.append({"customer_id": row.customer_id, "action": row.action})
            if channel(row.action) in counted:
                nba.ledger.append(
                    {"customer_id": row.customer_id, "channel": channel(row.action), "contacted_at": row.at}
                )
        before = set(nba.converted)
        _respond(today, chosen, day_index, draws, truth, nba, recent, cost)
        new = nba.converted - before
        cell_of = decided.explanations[decided.explanations["candidate_order"] == 0].set_index("customer_id")["cell"]
        for index, cid in today["customer_id"].items():  # the learning's record: did a conversion follow
            if cid in before:
                continue
            acted = chosen.get(int(index), [engine.NO_ACTION])[0]
            history.append({"action": acted, "cell": cell_of.get(cid, "all"), "responded": int(cid in new)})
    holdout = _holdout_lift(people, nba, holdout_ids)
    return LoopOutcome(truth.name, days, len(people), round(budget, 2), {r.policy: r for r in (base_run, nba)}, holdout)


def _decision_time_rules(settings: PolicySettings):  # noqa: ANN202 (ContactSettings)
    from mos_pipelines.decisioning.store import decision_time_rules

    return decision_time_rules(settings)


def _conversions_frame(run: PolicyRun) -> pd.DataFrame:
    return pd.DataFrame(
        [{"customer_id": c, "conversion_type": "order", "converted_at": t} for c, t in run.conversion_log],
        columns=["customer_id", "conversion_type", "converted_at"],
    )


def _respond(
    today: pd.DataFrame,
    chosen: dict[int, list[str]],
    day_index: int,
    draws: np.ndarray,
    truth: Truth,
    run: PolicyRun,
    recent: dict[tuple[str, str], list[int]],
    cost,  # noqa: ANN001
) -> None:
    """Apply the truth to the day's contacts and everybody's base chance."""
    for index, person in today.iterrows():
        cid = person["customer_id"]
        if cid in run.converted:
            continue
        p = truth.base.get(str(person["lifecycle_stage"]), 0.0003)
        value = truth.default_value
        for action in chosen.get(int(index), []):
            key = (cid, action if action != "reengagement_email" else "nurture_email")
            seen = [d for d in recent.get(key, []) if day_index - d < 7]
            p += truth.extra(action, person, len(seen))
            recent[key] = [*seen, day_index]
            run.contacts += 1
            run.spend_usd += cost(action)
            run.by_action[action] = run.by_action.get(action, 0) + 1
            value = max(value, truth.values.get(action, truth.default_value))
        run.expected[cid] = run.expected.get(cid, 0.0) + min(p, 1.0)
        if draws[day_index, int(index)] < min(p, 1.0):
            run.converted.add(cid)
            run.conversions += 1
            run.value_usd += value
            at = datetime.datetime(2026, 3, 2) + datetime.timedelta(days=day_index, hours=18)
            run.conversion_log.append((cid, at))


def _difference(treated: np.ndarray, held: np.ndarray) -> tuple[float, float, float]:
    if len(treated) < 2 or len(held) < 2:
        return float("nan"), float("nan"), float("nan")
    diff = float(treated.mean() - held.mean())
    se = math.sqrt(treated.var(ddof=1) / len(treated) + held.var(ddof=1) / len(held))
    return diff, diff - Z95 * se, diff + Z95 * se


def _holdout_lift(people: pd.DataFrame, run: PolicyRun, holdout_ids: set[str]) -> dict[str, float]:
    """Treated vs holdout people: conversions drawn, and the truth's expected conversions (less noisy)."""
    ids = people["customer_id"]
    held = ids.isin(holdout_ids).to_numpy()
    drawn = ids.isin(run.converted).to_numpy().astype(float)
    expected = ids.map(run.expected).fillna(0.0).to_numpy()
    lift, low, high = _difference(drawn[~held], drawn[held])
    e_lift, e_low, e_high = _difference(expected[~held], expected[held])
    return {
        "treated_people": int((~held).sum()),
        "holdout_people": int(held.sum()),
        "treated_rate": float(drawn[~held].mean()) if (~held).any() else float("nan"),
        "holdout_rate": float(drawn[held].mean()) if held.any() else float("nan"),
        "lift": lift,
        "lift_low": low,
        "lift_high": high,
        "expected_treated": float(expected[~held].mean()) if (~held).any() else float("nan"),
        "expected_holdout": float(expected[held].mean()) if held.any() else float("nan"),
        "expected_lift": e_lift,
        "expected_lift_low": e_low,
        "expected_lift_high": e_high,
    }
