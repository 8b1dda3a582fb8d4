"""``mos simulate --blueprint FILE --days N``: the simulated world answers what an approved blueprint buys, and what
the same money buys under today's default schedule.

The world is the one ``mos generate`` wrote (its truth files under ``$MOS_HOME/truth``); the blueprint is run on the
warehouse built from it (its steps write their audiences and send lists to ``ops.blueprint_members``). Then, for N
days after the history, three policies spend the same dollars on the same world:

- ``blueprint``: its ``channel_budget`` steps' daily spend in the segment's regions; the audiences of its
  ``ad_audience_sync`` steps targeted on those destinations' channels; its ``nurture_email`` send list, the sends
  spread evenly over the horizon;
- ``default_schedule``: the same dollars on the always-on paid campaigns in proportion to what each channel × region
  spent over the history (what the business does today), every region, nobody targeted;
- ``default_mix_in_segment``: the same dollars in the segment's regions only, in the same historical proportions
  (it separates "spend where the goal is" from "pick the channels that convert").

The world's answer, from its truth (``channel_rates.csv``, ``arm_rates.csv``, ``people.csv``): ad dollars on a channel
in a region buy paid sessions at the channel's cost per click × the region's factor × clicks per session, with
diminishing returns (constant elasticity ``ELASTICITY`` above today's spend of the channel × region); the sessions fall on the region's people by engagement (a share
``TARGETED_SHARE`` on the synced audience when targeted); a session orders with the true probability of its
channel, region and person. A nurture send is delivered, clicked and converts with the best variant's true rates
of the recipient's region. The objective counts people of the segment with no order before who order: realised
(drawn) and expected (1 - the product of each person's non-conversion probabilities over what reached them).
Draws come from the stream ``(seed, BLUEPRINT, day)`` per channel × region, so every policy meets the same luck.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mos_pipelines.blueprint.plan import Blueprint
from mos_pipelines.configuration.blueprint import BlueprintSettings
from mos_pipelines.simulation.campaigns import PAID_CLICK_OVERHEAD, REGION_CPC_FACTOR
from mos_pipelines.simulation.channels import CHANNEL_NAMES, CHANNELS, PAID_CHANNELS
from mos_pipelines.simulation.geography import REGIONS
from mos_pipelines.simulation.streams import Stream, rng

ELASTICITY = 0.6  # sessions ∝ daily spend ** ELASTICITY: the marginal session costs 1 / 0.6 × the average one
TARGETED_SHARE = 0.5  # share of a targeted channel's paid sessions that reach the synced audience
# segment dimensions of config/blueprint.yaml -> columns of truth/people.csv
PEOPLE_COLUMNS = {
    "region": "region",
    "country_code": "country",
    "persona": "persona",
    "seniority": "seniority",
    "industry": "industry",
}
POLICIES = ("blueprint", "default_schedule", "default_mix_in_segment")


class SimulationError(ValueError):
    """The blueprint cannot be simulated here; the message says what is missing."""


@dataclass
class TruthWorld:
    """What the simulated world is, read back from its truth files."""

    people: pd.DataFrame  # person_id, region, propensity factor, engagement, segment columns
    paying: np.ndarray  # ordered during the history
    conversion: dict[tuple[str, str], float]  # order probability of a session, channel × region, at factor 1
    email: dict[str, tuple[float, float]]  # region -> (click rate per send incl. delivery, conversion per click)
    daily_spend: dict[tuple[str, str], float]  # historical mean daily ad spend, channel × region
    seed: int
    history_days: int
    start: datetime.date
    scenario: str

    @property
    def history_end(self) -> datetime.date:
        return self.start + datetime.timedelta(days=self.history_days - 1)


def load_world(truth_dir: Path) -> TruthWorld:
    manifest_path = truth_dir / "manifest.json"
    needed = ["manifest.json", "people.csv", "orders.parquet", "channel_rates.csv", "arm_rates.csv", "ad_spend.parquet"]
    missing = [n for n in needed if not (truth_dir / n).is_file()]
    if missing:
        raise SimulationError(
            f"{truth_dir} has no {', '.join(missing)}: simulating a blueprint needs the simulated world it was planned "
            "on (`mos generate`, then `mos run`, `mos blueprint new` and `approve` in the same MOS_HOME)"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    config = manifest.get("config", {})
    people = pd.read_csv(truth_dir / "people.csv", dtype={"person_id": str}, keep_default_na=False)
    propensity = people["propensity"].astype(float)
    people = people.assign(factor=propensity / propensity.mean(), engagement=people["engagement"].astype(float))
    orders = pd.read_parquet(truth_dir / "orders.parquet", columns=["person_id"])
    paying = people["person_id"].isin(set(orders["person_id"])).to_numpy()
    region_factor = people.groupby("region")["factor"].mean()
    rates = pd.read_csv(truth_dir / "channel_rates.csv", keep_default_na=False)  # region "NA" is North America
    conversion = {
        (c, r): float(v) / float(region_factor.get(r, 1.0))
        for c, r, v in zip(rates["channel"], rates["region"], rates["conversion_rate"])
    }
    arms = pd.read_csv(truth_dir / "arm_rates.csv", keep_default_na=False)
    arms = arms.assign(reward=arms["click_rate"] * arms["conversion_rate"])
    best = arms.sort_values(["region", "reward"], ascending=[True, False]).drop_duplicates("region")
    sent = (
        pd.read_parquet(truth_dir / "email_sends.parquet", columns=["sent", "bounced"])
        if (truth_dir / "email_sends.parquet").is_file()
        else pd.DataFrame({"sent": [], "bounced": []})
    )
    bounce = float(sent["bounced"].sum()) / max(float(sent["sent"].sum()), 1.0)
    email = {
        r: ((1 - bounce) * float(c), float(v) / float(region_factor.get(r, 1.0)))
        for r, c, v in zip(best["region"], best["click_rate"], best["conversion_rate"])
    }
    spend = pd.read_parquet(truth_dir / "ad_spend.parquet", columns=["channel", "region", "spend_usd"])
    days = int(config.get("days") or 1)
    daily = spend.groupby(["channel", "region"])["spend_usd"].sum() / max(days, 1)
    return TruthWorld(
        people=people,
        paying=paying,
        conversion=conversion,
        email=email,
        daily_spend={k: float(v) for k, v in daily.items()},
        seed=int(config.get("seed", 7)),
        history_days=days,
        start=datetime.date.fromisoformat(str(config.get("start_date", "2026-01-01"))),
        scenario=str((config.get("scenario") or {}).get("name", "?")),
    )


def in_segment(world: TruthWorld, bp: Blueprint) -> np.ndarray:
    """The world's people inside the blueprint's segment (the objective's filters on the truth's columns)."""
    mask = np.ones(len(world.people), dtype=bool)
    for f in bp.objective.segment:
        column = PEOPLE_COLUMNS.get(f.dimension)
        if column is None or column not in world.people.columns:
            raise SimulationError(
                f"the segment filter on {f.dimension!r} has no counterpart in the simulated world's people "
                f"(it knows {', '.join(PEOPLE_COLUMNS)})"
            )
        values = {v.casefold() for v in f.values}
        mask &= world.people[column].astype(str).str.casefold().isin(values).to_numpy()
    return mask


@dataclass
class Policy:
    """What a policy does each day: ad dollars per channel × region, targeted people per channel, emails."""

    name: str
    spend: dict[tuple[str, str], float]  # daily USD per (channel, region)
    targets: dict[str, np.ndarray] = field(default_factory=dict)  # channel -> person positions
    sends: dict[int, np.ndarray] = field(default_factory=dict)  # day -> person positions sent a nurture email
    cost_per_send: float = 0.0
    notes: list[str] = field(default_factory=list)

    def total_usd(self, days: int) -> float:
        sends = sum(len(v) for d, v in self.sends.items() if d < days)
        return sum(self.spend.values()) * days + sends * self.cost_per_send


@dataclass
class PolicyResult:
    policy: str
    days: int
    spend_usd: float
    ad_spend_usd: float
    sends: int
    sessions: int
    new_customers: int  # segment people without an earlier order who ordered (drawn)
    expected_new_customers: float  # the same, expected from the true probabilities of what reached them
    orders: int
    daily_new: list[int] = field(default_factory=list)  # new customers so far, at the end of each day

    @property
    def per_thousand_usd(self) -> float:
        return 1000 * self.new_customers / self.spend_usd if self.spend_usd > 0 else math.nan

    @property
    def expected_per_thousand_usd(self) -> float:
        return 1000 * self.expected_new_customers / self.spend_usd if self.spend_usd > 0 else math.nan


def _slot_stream(seed: int, day: int, slot: int) -> np.random.Generator:
    return rng(seed, Stream.BLUEPRINT, day * 1000 + slot)


def simulate(world: TruthWorld, policy: Policy, segment: np.ndarray, days: int) -> PolicyResult:
    people = world.people
    n = len(people)
    factor = people["factor"].to_numpy(dtype=float)
    engagement = people["engagement"].to_numpy(dtype=float)
    region = people["region"].to_numpy()
    by_region = {r: np.flatnonzero(region == r) for r in REGIONS}
    paying = world.paying.copy()
    eligible = segment & ~world.paying
    daily_new: list[int] = []
    log_stay = np.zeros(n)  # sum of log(1 - p) over everything that reached a person (read for the eligible)
    sessions = orders = sends = 0
    ad_usd = 0.0
    for day in range(days):
        for (channel, reg), usd in sorted(policy.spend.items()):
            pool = by_region.get(reg)
            if usd <= 0 or pool is None or len(pool) == 0:
                continue
            slot = CHANNEL_NAMES.index(channel) * len(REGIONS) + REGIONS.index(reg)
            g = _slot_stream(world.seed, day, slot)
            cpc = CHANNELS[channel].cpc_usd * REGION_CPC_FACTOR[reg] * PAID_CLICK_OVERHEAD
            count = int(g.poisson(paid_sessions(usd, cpc, world.daily_spend.get((channel, reg), 0.0))))
            ad_usd += usd
            if count == 0:
                continue
            audience = policy.targets.get(channel, np.zeros(0, dtype=np.int64))
            targeted = audience[region[audience] == reg]
            n_targeted = int(g.binomial(count, TARGETED_SHARE)) if len(targeted) else 0
            who = np.concatenate(
                [_draw(g, targeted, engagement, n_targeted), _draw(g, pool, engagement, count - n_targeted)]
            )
            p = np.clip(world.conversion.get((channel, reg), 0.0) * factor[who], 0, 0.9)
            sessions += len(who)
            converted = g.random(len(who)) < p
            orders += int(converted.sum())
            paying[who[converted]] = True
            np.add.at(log_stay, who, np.log1p(-p))
        today = policy.sends.get(day)
        if today is not None and len(today):
            g = _slot_stream(world.seed, day, 999)
            sends += len(today)
            click_rate = np.array([world.email.get(r, (0.0, 0.0))[0] for r in region[today]])
            per_click = np.array([world.email.get(r, (0.0, 0.0))[1] for r in region[today]])
            p_click = np.clip(click_rate, 0, 1)
            p_order = np.clip(per_click * factor[today], 0, 0.9)
            clicked = g.random(len(today)) < p_click
            converted = clicked & (g.random(len(today)) < p_order)
            sessions += int(clicked.sum())
            orders += int(converted.sum())
            paying[today[converted]] = True
            np.add.at(log_stay, today, np.log1p(-p_click * p_order))
        daily_new.append(int((paying & eligible).sum()))
    new = int((paying & eligible).sum())
    expected = float((1 - np.exp(log_stay[eligible])).sum())
    spent = ad_usd + sends * policy.cost_per_send
    return PolicyResult(
        policy.name,
        days,
        round(spent, 2),
        round(ad_usd, 2),
        sends,
        sessions,
        new,
        round(expected, 2),
        orders,
        daily_new,
    )


def paid_sessions(extra_usd: float, cpc_usd: float, today_usd: float) -> float:
    """Expected paid sessions a day that ``extra_usd`` on top of today's ``today_usd`` buys: the response is
    constant-elasticity, calibrated so today's spend buys today's sessions (``today_usd / cpc_usd``); with no spend
    today, the first dollar buys at the average cost per session."""
    if extra_usd <= 0:
        return 0.0
    if today_usd <= 0:
        return extra_usd / cpc_usd
    return today_usd / cpc_usd * (((today_usd + extra_usd) / today_usd) ** ELASTICITY - 1)


def _draw(g: np.random.Generator, pool: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    w = weight[pool]
    return pool[g.choice(len(pool), size=k, p=w / w.sum())]


# -- the policies -------------------------------------------------------------------------------------------------


def segment_regions(world: TruthWorld, segment: np.ndarray) -> dict[str, float]:
    """Share of the segment's people per region (where a segment-wide dollar is spent)."""
    counts = world.people.loc[segment, "region"].value_counts()
    total = counts.sum()
    return {r: float(counts.get(r, 0)) / total for r in REGIONS if total and counts.get(r, 0)}


def blueprint_policy(
    world: TruthWorld,
    bp: Blueprint,
    segment: np.ndarray,
    members: Callable[[str], list[str]],
    person_of: pd.Series,
    cost_per_send: float | None,
) -> Policy:
    """The daily actions of an approved blueprint; ``members(step_id)`` gives a step's customer list and
    ``person_of`` maps customer ids to the world's person ids."""
    position = pd.Series(np.arange(len(world.people)), index=world.people["person_id"])
    regions = segment_regions(world, segment)
    policy = Policy("blueprint", {}, cost_per_send=cost_per_send or 0.0)
    horizon = bp.objective.horizon_days

    def persons(step_id: str) -> np.ndarray:
        ids = person_of.reindex(members(step_id)).dropna()
        return np.unique(position.reindex(ids).dropna().to_numpy(dtype=np.int64))

    for step in bp.steps:
        if step.type == "channel_budget":
            channel, daily = str(step.params["channel"]), float(step.params["daily_usd"])
            if channel not in PAID_CHANNELS:
                policy.notes.append(f"{step.id}: {channel} is not bought by the dollar in this world; not simulated")
                continue
            daily = min(daily, step.budget_usd / max(horizon, 1))
            for reg, share in regions.items():
                key = (channel, reg)
                policy.spend[key] = policy.spend.get(key, 0.0) + daily * share
        elif step.type == "ad_audience_sync":
            who = persons(step.id)
            for destination in step.params.get("destinations", ()):
                platform = str(destination).split("__", 1)[0]
                for channel in PAID_CHANNELS:
                    if CHANNELS[channel].platform == platform:
                        policy.targets[channel] = np.union1d(policy.targets.get(channel, []), who).astype(np.int64)
        elif step.type == "nurture_email":
            who = persons(step.id)
            per_person = int(step.params.get("sends_per_person", 1))
            if cost_per_send is None:
                policy.notes.append(f"{step.id}: no measured cost per send; nurture not simulated")
                continue
            for k in range(per_person):
                day = int(k * horizon / per_person)
                policy.sends[day] = np.union1d(policy.sends.get(day, []), who).astype(np.int64)
    return policy


def default_policy(world: TruthWorld, total_usd: float, days: int, regions: tuple[str, ...] | None = None) -> Policy:
    """``total_usd`` over ``days`` on the always-on paid campaigns, in proportion to their historical spend
    (only in ``regions`` when given)."""
    mix = {k: v for k, v in world.daily_spend.items() if k[0] in PAID_CHANNELS and (regions is None or k[1] in regions)}
    weight = sum(mix.values())
    name = "default_schedule" if regions is None else "default_mix_in_segment"
    if weight <= 0 or days <= 0:
        return Policy(name, {}, notes=["no historical ad spend to follow"])
    daily = total_usd / days
    return Policy(name, {k: daily * v / weight for k, v in mix.items()})


@dataclass
class Comparison:
    blueprint_id: str
    scenario: str
    days: int
    horizon_days: int
    goal_gain: float | None  # the blueprint's goal over its horizon (target - baseline)
    results: list[PolicyResult]
    notes: list[str]

    def result(self, policy: str) -> PolicyResult:
        return next(r for r in self.results if r.policy == policy)

    @property
    def goal_for_days(self) -> float | None:
        """The goal prorated to the simulated days (the plan's straight line)."""
        if self.goal_gain is None:
            return None
        return self.goal_gain * min(self.days, self.horizon_days) / self.horizon_days

    def weekly(self, bp: Blueprint, behind_from_day: int = 7) -> pd.DataFrame:
        """The blueprint policy's new customers at the end of each week against the plan's trajectory (the same
        line and interval `blueprints.progress` judges the warehouse by)."""
        from mos_pipelines.blueprint.progress import start_day, trajectory

        start = start_day(bp)
        if start is None:  # no data day in the file: no trajectory to judge against
            return pd.DataFrame()
        baseline = float(bp.goal.get("baseline") or 0)
        mine = self.result("blueprint")
        rows = []
        for day in [*range(7, self.days + 1, 7), *([self.days] if self.days % 7 else [])]:
            _, _, planned, lower, upper = trajectory(bp, start + datetime.timedelta(days=day))
            new = mine.daily_new[day - 1] if mine.daily_new else 0
            status = "behind" if day >= behind_from_day and baseline + new < lower else "on track"
            rows.append(
                {
                    "day": day,
                    "new_customers": new,
                    "planned_gain": round(planned - baseline, 1),
                    "lower_gain": round(lower - baseline, 1),
                    "upper_gain": round(upper - baseline, 1),
                    "status": status,
                }
            )
        return pd.DataFrame(rows)

    def frame(self) -> pd.DataFrame:
        rows = []
        for r in self.results:
            rows.append(
                {
                    "blueprint_id": self.blueprint_id,
                    "scenario": self.scenario,
                    "policy": r.policy,
                    "days": r.days,
                    "spend_usd": r.spend_usd,
                    "ad_spend_usd": r.ad_spend_usd,
                    "sends": r.sends,
                    "sessions": r.sessions,
                    "orders": r.orders,
                    "new_customers": r.new_customers,
                    "expected_new_customers": r.expected_new_customers,
                    "per_1000_usd": round(r.per_thousand_usd, 4),
                    "expected_per_1000_usd": round(r.expected_per_thousand_usd, 4),
                    "goal_for_days": None if self.goal_for_days is None else round(self.goal_for_days, 2),
                }
            )
        return pd.DataFrame(rows)


def compare(
    world: TruthWorld,
    bp: Blueprint,
    days: int,
    members: Callable[[str], list[str]],
    person_of: pd.Series,
    cost_per_send: float | None,
) -> Comparison:
    segment = in_segment(world, bp)
    if not segment.any():
        raise SimulationError(f"nobody in the simulated world is in {bp.objective.segment_text()}")
    plan = blueprint_policy(world, bp, segment, members, person_of, cost_per_send)
    total = plan.total_usd(days)
    if total <= 0:
        raise SimulationError(
            f"blueprint {bp.blueprint_id} spends nothing in {days} days (no channel_budget or nurture_email step the "
            "world can answer)"
        )
    regions = tuple(segment_regions(world, segment))
    policies = [plan, default_policy(world, total, days), default_policy(world, total, days, regions)]
    results = [simulate(world, p, segment, days) for p in policies]
    gain = None
    if bp.goal.get("target") is not None and bp.goal.get("baseline") is not None:
        gain = float(bp.goal["target"]) - float(bp.goal["baseline"])
    notes = [n for p in policies for n in p.notes]
    return Comparison(
        bp.blueprint_id,
        world.scenario,
        days,
        bp.objective.horizon_days,
        None if gain is None else float(gain),
        results,
        notes,
    )


def simulate_blueprint(
    con: duckdb.DuckDBPyConnection, truth_dir: Path, bp: Blueprint, settings: BlueprintSettings, days: int, run_id: str
) -> Comparison:
    """Run the approved blueprint's pending steps on the warehouse (its lists), then compare the three policies on
    the world of ``truth_dir`` for ``days`` days; the rows go to ``blueprints.simulations``."""
    from mos_pipelines.blueprint import execution, ledger
    from mos_pipelines.identity.truth_eval import person_by_customer

    world = load_world(truth_dir)
    execution.run_blueprint(con, bp, settings, run_id, resume=True)
    person_of = person_by_customer(con, truth_dir / "identity_truth.csv")
    if person_of.empty:
        raise SimulationError(f"no customer of the warehouse links to a person of {truth_dir}/identity_truth.csv")
    cps, _how = ledger.cost_per_send(
        con, settings.goal.channel_table, settings.plan.email_channel, settings.goal.window_days
    )
    result = compare(world, bp, days, lambda step: execution.members(con, bp.blueprint_id, [step]), person_of, cps)
    frame = result.frame().assign(run_id=run_id, simulated_at=datetime.datetime.now(datetime.UTC))
    con.execute("create schema if not exists blueprints")
    con.register("_bp_sim", frame)
    try:
        con.execute("create table if not exists blueprints.simulations as select * from _bp_sim where false")
        con.execute("insert into blueprints.simulations by name select * from _bp_sim")
    finally:
        con.unregister("_bp_sim")
    return result
