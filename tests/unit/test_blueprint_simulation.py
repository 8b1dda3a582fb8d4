"""`mos simulate --blueprint`: the world's answer to what a blueprint buys (simulation/blueprint_world.py), on a
small world written here: the three policies spend the same dollars, the drawn outcome agrees with the truth's
expectation over many seeds, a channel that truly converts better buys more, targeting puts the sessions on the
audience, the runs are deterministic, and the truth files are read back as written."""

from __future__ import annotations

import datetime
import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from mos_pipelines.blueprint import store
from mos_pipelines.configuration import load_blueprint
from mos_pipelines.simulation import blueprint_world as bw
from tests.unit.test_blueprint import build_warehouse

REGIONS = ("NA", "EU", "UK", "APAC", "LATAM")


def make_world(n: int = 3000, seed: int = 3, paid_search_eu: float = 0.03) -> bw.TruthWorld:
    g = np.random.default_rng(0)
    region = np.array(REGIONS)[g.integers(0, len(REGIONS), n)]
    people = pd.DataFrame(
        {
            "person_id": [f"P{i:06d}" for i in range(n)],
            "region": region,
            "country": np.where(region == "EU", "DE", "US"),
            "persona": "marketer",
            "seniority": "senior",
            "factor": np.exp(0.5 * g.standard_normal(n)),
            "engagement": np.exp(0.8 * g.standard_normal(n)),
        }
    )
    conversion = {(c, r): 0.02 for c in ("paid_search", "paid_social", "linkedin", "display") for r in REGIONS}
    conversion[("paid_search", "EU")] = paid_search_eu
    return bw.TruthWorld(
        people=people,
        paying=g.random(n) < 0.1,
        conversion=conversion,
        email={r: (0.05, 0.05) for r in REGIONS},
        daily_spend={(c, r): 40.0 for c in ("paid_search", "paid_social") for r in REGIONS},
        seed=seed,
        history_days=30,
        start=datetime.date(2026, 1, 1),
        scenario="unit",
    )


@pytest.fixture(scope="module")
def blueprint(tmp_path_factory):
    """An approved EU blueprint drafted by the planner on the unit warehouse of test_blueprint.py."""
    root = tmp_path_factory.mktemp("bp_sim")
    path = root / "warehouse.duckdb"
    build_warehouse(path)
    con = duckdb.connect(str(path), read_only=True)
    d = store.draft(con, load_blueprint(), "Expand paying customers in the EU", budget_usd=20000, months=3)
    con.close()
    bp_path, _ = store.write(root / "blueprints", d)
    return store.approve(bp_path, by="ana", at=datetime.datetime(2026, 4, 1, tzinfo=datetime.UTC))


def _eu_members(world: bw.TruthWorld):
    """Every step's list: the EU people without an order (customer id = person id here)."""
    eu = world.people.loc[(world.people["region"] == "EU").to_numpy() & ~world.paying, "person_id"].tolist()
    person_of = pd.Series(world.people["person_id"].to_numpy(), index=world.people["person_id"].to_numpy())
    return (lambda step: eu), person_of


def test_the_policies_spend_the_same_dollars_and_the_defaults_follow_history(blueprint) -> None:
    world = make_world()
    members, person_of = _eu_members(world)
    result = bw.compare(world, blueprint, 30, members, person_of, cost_per_send=0.002)
    spends = {r.policy: r.spend_usd for r in result.results}
    assert set(spends) == set(bw.POLICIES)
    assert max(spends.values()) - min(spends.values()) < 0.05
    mine = result.result("blueprint")
    assert mine.sends > 0 and mine.ad_spend_usd > 0  # the plan's channels and its nurture list both ran
    # the blueprint spends in the EU only; the default schedule everywhere, in the historical (equal) proportions
    plan = bw.blueprint_policy(world, blueprint, bw.in_segment(world, blueprint), members, person_of, 0.002)
    assert {r for _, r in plan.spend} == {"EU"}
    default = bw.default_policy(world, 1000.0, 10)
    assert len(default.spend) == 10 and all(v == pytest.approx(10.0) for v in default.spend.values())
    in_segment = bw.default_policy(world, 1000.0, 10, ("EU",))
    assert {r for _, r in in_segment.spend} == {"EU"} and sum(in_segment.spend.values()) == pytest.approx(100.0)


def test_the_drawn_outcome_agrees_with_the_truths_expectation() -> None:
    """Over 40 seeds the mean drawn number of new customers is within 3 standard errors of the mean expectation
    (a wrong expectation, e.g. one that stops counting a person after their first order, misses by far more)."""
    drawn, expected = [], []
    for seed in range(40):
        world = make_world(n=1500, seed=seed)
        segment = (world.people["region"] == "EU").to_numpy()
        policy = bw.Policy("p", {("paid_search", "EU"): 150.0, ("paid_social", "EU"): 60.0})
        r = bw.simulate(world, policy, segment, days=20)
        drawn.append(r.new_customers)
        expected.append(r.expected_new_customers)
    se = np.std(drawn, ddof=1) / np.sqrt(len(drawn))
    assert abs(np.mean(drawn) - np.mean(expected)) < 3 * se + 0.5, (np.mean(drawn), np.mean(expected), se)


def test_a_channel_that_truly_converts_better_buys_more_and_spend_saturates() -> None:
    segment = lambda w: (w.people["region"] == "EU").to_numpy()  # noqa: E731
    weak, strong = make_world(paid_search_eu=0.01), make_world(paid_search_eu=0.05)
    policy = bw.Policy("p", {("paid_search", "EU"): 100.0})
    a = bw.simulate(weak, policy, segment(weak), 30)
    b = bw.simulate(strong, policy, segment(strong), 30)
    assert b.expected_new_customers > 3 * a.expected_new_customers
    assert a.sessions == b.sessions  # same dollars, same luck: only the conversion differs
    # diminishing returns: ten times the dollars buy fewer than ten times the sessions
    more = bw.simulate(weak, bw.Policy("p", {("paid_search", "EU"): 1000.0}), segment(weak), 30)
    assert a.sessions * 3 < more.sessions < a.sessions * 10


def test_targeting_puts_sessions_on_the_synced_audience() -> None:
    world = make_world()
    eu = np.flatnonzero((world.people["region"] == "EU").to_numpy())
    audience = eu[:50]
    segment = np.zeros(len(world.people), dtype=bool)
    segment[audience] = True
    plain = bw.simulate(world, bw.Policy("p", {("paid_search", "EU"): 200.0}), segment, 20)
    targeted = bw.simulate(
        world, bw.Policy("p", {("paid_search", "EU"): 200.0}, targets={"paid_search": audience}), segment, 20
    )
    assert targeted.expected_new_customers > 3 * plain.expected_new_customers


def test_same_world_same_policy_same_result(blueprint) -> None:
    world = make_world()
    members, person_of = _eu_members(world)
    a = bw.compare(world, blueprint, 20, members, person_of, 0.002).frame()
    b = bw.compare(world, blueprint, 20, members, person_of, 0.002).frame()
    pd.testing.assert_frame_equal(a, b)
    other = bw.compare(make_world(seed=4), blueprint, 20, members, person_of, 0.002).frame()
    assert not other["new_customers"].equals(a["new_customers"]) or not other["sessions"].equals(a["sessions"])


def test_a_segment_the_world_cannot_read_or_that_holds_nobody_is_refused(blueprint) -> None:
    world = make_world()
    members, person_of = _eu_members(world)
    nobody = make_world()
    nobody.people["region"] = "NA"
    with pytest.raises(bw.SimulationError, match="nobody in the simulated world"):
        bw.compare(nobody, blueprint, 10, members, person_of, 0.002)
    unknown = blueprint.model_copy(
        update={
            "objective": blueprint.objective.model_copy(
                update={
                    "segment": (
                        *blueprint.objective.segment,
                        type(blueprint.objective.segment[0])(dimension="account_tier", values=("gold",)),
                    )
                }
            )
        }
    )
    with pytest.raises(bw.SimulationError, match="'account_tier' has no counterpart"):
        bw.compare(world, unknown, 10, members, person_of, 0.002)


def test_an_industry_segment_is_read_from_the_worlds_people(blueprint) -> None:
    world = make_world()
    world.people["industry"] = np.where(np.arange(len(world.people)) % 2 == 0, "saas", "retail")
    f = blueprint.objective.segment[0]
    saas = blueprint.model_copy(
        update={
            "objective": blueprint.objective.model_copy(
                update={"segment": (f, type(f)(dimension="industry", values=("SaaS",)))}
            )
        }
    )
    mask = bw.in_segment(world, saas)
    expected = (world.people["region"] == "EU").to_numpy() & (world.people["industry"] == "saas").to_numpy()
    assert mask.tolist() == expected.tolist() and mask.any()


def test_truth_files_are_read_back(tmp_path) -> None:
    truth = tmp_path / "truth"
    truth.mkdir()
    with pytest.raises(bw.SimulationError, match="manifest.json"):
        bw.load_world(truth)
    (truth / "manifest.json").write_text(
        json.dumps({"config": {"seed": 11, "days": 10, "start_date": "2026-03-01", "scenario": {"name": "s"}}})
    )
    pd.DataFrame(
        {
            "person_id": ["P1", "P2", "P3", "P4"],
            "region": ["NA", "EU", "EU", "UK"],
            "propensity": [0.1, 0.2, 0.3, 0.4],
            "engagement": [1.0, 1.0, 2.0, 1.0],
            "country": ["US", "DE", "FR", "GB"],
        }
    ).to_csv(truth / "people.csv", index=False)
    pd.DataFrame({"person_id": ["P2", "P2"]}).to_parquet(truth / "orders.parquet")
    pd.DataFrame(
        {"channel": ["paid_search", "paid_search"], "region": ["NA", "EU"], "conversion_rate": [0.02, 0.05]}
    ).to_csv(truth / "channel_rates.csv", index=False)
    pd.DataFrame(
        {
            "campaign_id": ["c", "c"],
            "variant_id": ["A", "B"],
            "region": ["NA", "NA"],
            "click_rate": [0.1, 0.2],
            "conversion_rate": [0.05, 0.05],
        }
    ).to_csv(truth / "arm_rates.csv", index=False)
    pd.DataFrame({"channel": ["paid_search"], "region": ["NA"], "spend_usd": [200.0]}).to_parquet(
        truth / "ad_spend.parquet"
    )
    w = bw.load_world(truth)
    assert (w.seed, w.history_days, w.start, w.scenario) == (11, 10, datetime.date(2026, 3, 1), "s")
    assert w.paying.tolist() == [False, True, False, False]
    assert w.daily_spend == {("paid_search", "NA"): 20.0}
    # region "NA" survives CSV reading; rates are per session at a propensity factor of 1
    factor_eu = (0.2 + 0.3) / 2 / 0.25
    assert w.conversion[("paid_search", "EU")] == pytest.approx(0.05 / factor_eu)
    assert w.email["NA"][0] == pytest.approx(0.2)  # the best variant, no bounces on record


def test_week_by_week_the_blueprint_is_judged_against_its_trajectory(blueprint) -> None:
    world = make_world()
    members, person_of = _eu_members(world)
    result = bw.compare(world, blueprint, 30, members, person_of, 0.002)
    mine = result.result("blueprint")
    assert len(mine.daily_new) == 30 and mine.daily_new == sorted(mine.daily_new)
    assert mine.daily_new[-1] == mine.new_customers
    weeks = result.weekly(blueprint, behind_from_day=7)
    assert weeks["day"].tolist() == [7, 14, 21, 28, 30]
    assert weeks["new_customers"].tolist() == [mine.daily_new[d - 1] for d in (7, 14, 21, 28, 30)]
    behind = weeks["new_customers"] < weeks["lower_gain"]
    assert (weeks["status"] == "behind").tolist() == behind.tolist()
    # the trajectory is linear from the baseline to the target over the horizon
    gain = blueprint.goal["target"] - blueprint.goal["baseline"]
    assert weeks["planned_gain"].tolist() == pytest.approx([round(gain * d / 91, 1) for d in (7, 14, 21, 28, 30)])
