"""Blueprints on a small warehouse built here from a handful of rows: the objective parser, each context provider
(values and a missing table), the goal arithmetic, plan validation, diff and approval."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from mos_pipelines.blueprint import store
from mos_pipelines.blueprint.context import PROVIDERS, Context, as_of, tools, vocabulary
from mos_pipelines.blueprint.goal import GoalError
from mos_pipelines.blueprint.objective import (
    ObjectiveError,
    SegmentFilter,
    Vocabulary,
    parse_objective,
)
from mos_pipelines.blueprint.plan import find_cycle
from mos_pipelines.blueprint.rates import gamma_rate_interval
from mos_pipelines.configuration import ConfigError, load_blueprint

END = datetime.date(2026, 3, 31)
EU = (SegmentFilter(dimension="region", values=("EU",)),)


def build_warehouse(path: Path, with_optional: bool = True) -> None:
    """40 EU customers (20 paying), 20 NA (5 paying); 56 days of channel performance ending END."""
    con = duckdb.connect(str(path))
    for schema in ("marts", "ml", "experiments", "insights"):
        con.execute(f"create schema if not exists {schema}")
    con.execute("""create table marts.dim_customer_features (
        customer_id varchar, region varchar, country_code varchar, persona varchar, seniority varchar,
        industry varchar, is_identified boolean, is_email_marketing_consented boolean,
        is_ad_personalization_consented boolean, order_count bigint, first_order_at timestamp,
        first_seen_at timestamp, as_of_at timestamp)""")
    rows = []
    for i in range(60):
        region = "EU" if i < 40 else "NA"
        paying = (i < 20) or (40 <= i < 45)
        first_order = datetime.datetime(2026, 3, 31) - datetime.timedelta(days=(i * 3) % 70) if paying else None
        rows.append(
            (
                f"c{i:03d}",
                region,
                "DE" if region == "EU" else "US",
                "marketer" if i % 2 else "engineer",
                "manager",
                "software",
                i % 5 != 0,
                i % 3 != 0,
                i % 4 != 0,
                1 if paying else 0,
                first_order,
                datetime.datetime(2025, 12, 1),
                datetime.datetime(2026, 3, 31, 23),
            )
        )
    con.executemany("insert into marts.dim_customer_features values (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.execute("""create table marts.fct_channel_performance (date_day date, channel varchar, region varchar,
        spend_usd double, cost_usd double, sends bigint, new_customers double, conversions double, revenue_usd double)""")
    perf = []
    for d in range(56):
        day = END - datetime.timedelta(days=d)
        # EU: paid_search $100/day, one new customer every 2 days (CAC $200); paid_social $50/day, 7 in 56 days
        perf.append((day, "paid_search", "EU", 100.0, 100.0, 0, 0.5, 1.0, 150.0))
        perf.append((day, "paid_social", "EU", 50.0, 50.0, 0, 0.125, 0.5, 40.0))
        perf.append((day, "email", "EU", 0.0, 2.0, 400, 0.25, 1.0, 60.0))
        perf.append((day, "organic", "EU", 0.0, 0.0, 0, 1.0, 2.0, 300.0))
        perf.append((day, "paid_search", "NA", 80.0, 80.0, 0, 1.0, 2.0, 200.0))
    con.executemany("insert into marts.fct_channel_performance values (?,?,?,?,?,?,?,?,?)", perf)
    if with_optional:
        con.execute("""create table ml.lookalike_scores (customer_id varchar, audience varchar, score double,
            percentile double, tier integer, model_version varchar, scored_at timestamptz)""")
        con.executemany(
            "insert into ml.lookalike_scores values (?, 'high_value', 0.5, 0.5, ?, 'v1', now())",
            [(f"c{i:03d}", 1 if i % 2 else 2) for i in range(20, 60)],
        )
        con.execute("""create table experiments.bandit_allocations (allocation_date date, experiment_id varchar,
            segment varchar, variant_id varchar, prob_best double, posterior_mean double)""")
        con.executemany(
            "insert into experiments.bandit_allocations values (?,?,?,?,?,?)",
            [
                (datetime.date(2026, 3, 30), "nurture_subject", "all", "a", 0.2, 0.01),
                (datetime.date(2026, 3, 30), "nurture_subject", "all", "b", 0.8, 0.02),
                (datetime.date(2026, 3, 1), "nurture_subject", "all", "a", 0.9, 0.02),
            ],
        )
        con.execute("""create table insights.insights (insight_id varchar, insight_type varchar, statement varchar,
            call_to_action varchar, impact_usd double, status varchar)""")
        con.executemany(
            "insert into insights.insights values (?,?,?,?,?,?)",
            [
                ("i1", "channel_comparison", "paid_search beats paid_social in EU", "shift budget", 900.0, "accepted"),
                ("i2", "anomaly", "a rejected finding", None, 5000.0, "rejected"),
            ],
        )
    con.close()


@pytest.fixture(scope="module")
def settings():
    return load_blueprint()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bp") / "warehouse.duckdb"
    build_warehouse(path)
    return path


@pytest.fixture(scope="module")
def con(warehouse):
    c = duckdb.connect(str(warehouse), read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """A partial warehouse: only the two marts, no lookalike, bandit or insight tables."""
    path = tmp_path_factory.mktemp("bare") / "warehouse.duckdb"
    build_warehouse(path, with_optional=False)
    c = duckdb.connect(str(path), read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def ctx(con, settings):
    return Context(con, settings, as_of(con, settings))


VOCAB = Vocabulary(
    {"region": ("EU", "NA", "unknown"), "persona": ("engineer", "marketer")},
    ("email", "organic", "paid_search", "paid_social"),
)


# -- the parser ---------------------------------------------------------------------------------------------------


def test_parser_reads_the_issue_objective(settings):
    o = parse_objective("Expand my paying customer base in the EU, $100,000, 3 months", settings, VOCAB)
    assert (o.metric, o.segment, o.budget_usd, o.horizon_months, o.horizon_days) == (
        "paying_customers",
        EU,
        100000.0,
        3.0,
        91,
    )
    assert o.target is None and o.constraints.excluded_channels == ()


def test_parser_reads_target_constraints_synonyms_and_options(settings):
    o = parse_objective(
        "Grow paying customers in Europe by 2% without paid social, CAC under $300",
        settings,
        VOCAB,
        budget_usd=50000,
        months=6,
    )
    assert o.segment == EU and o.budget_usd == 50000 and o.horizon_months == 6
    assert (o.target.kind, o.target.value) == ("relative", 2.0)
    assert o.constraints.excluded_channels == ("paid_social",) and o.constraints.max_cac_usd == 300
    same = parse_objective(
        "increase paying customers in the EU by 2 percent without paid_social cac below 300",
        settings,
        VOCAB,
        budget_usd=50000,
        months=6,
    )
    assert same.fingerprint() == o.fingerprint()  # wording differs, the objective is the same
    k = parse_objective("acquire buyers in EU and NA to 2,000 with 100k USD over 12 weeks", settings, VOCAB)
    assert k.segment == (SegmentFilter(dimension="region", values=("EU", "NA")),)
    assert (k.target.kind, k.target.value, k.budget_usd, k.horizon_days) == ("absolute", 2000.0, 100000.0, 84)


def test_ambiguous_objective_lists_what_it_could_mean(settings):
    with pytest.raises(ObjectiveError) as err:
        parse_objective("Expand my customer base in the EU", settings, VOCAB, budget_usd=1000, months=3)
    assert err.value.alternatives[0].startswith("known_customers") and err.value.alternatives[1].startswith(
        "paying_customers"
    )
    assert "could mean more than one goal metric" in str(err.value)
    ambiguous = Vocabulary({"region": ("EU",), "country_code": ("EU",)}, ())
    with pytest.raises(ObjectiveError) as err:
        parse_objective("grow paying customers in EU", settings, ambiguous, budget_usd=1000, months=3)
    assert err.value.alternatives == ["country_code = EU", "region = EU"]


def test_unsupported_objectives_say_what_is_supported(settings):
    with pytest.raises(ObjectiveError) as err:
        parse_objective("Increase revenue in the EU", settings, VOCAB, budget_usd=1000, months=3)
    assert "no goal metric recognised" in str(err.value) and len(err.value.alternatives) == len(settings.metrics)
    with pytest.raises(
        ObjectiveError, match="'reduce' asks to decrease something; this version plans objectives that increase"
    ) as err:
        parse_objective("Reduce churn in the EU", settings, VOCAB, budget_usd=1000, months=3)
    assert err.value.alternatives[0].startswith("paying_customers")
    with pytest.raises(ObjectiveError, match="UK, which the warehouse does not have .*values present: EU, NA"):
        parse_objective("Grow paying customers in the United Kingdom", settings, VOCAB, budget_usd=1000, months=3)
    with pytest.raises(ObjectiveError, match="US dollars"):
        parse_objective("Grow paying customers in the EU with €5,000 in 3 months", settings, VOCAB)
    with pytest.raises(ObjectiveError, match="no horizon"):
        parse_objective("Grow paying customers in the EU with $5,000", settings, VOCAB)
    with pytest.raises(ObjectiveError, match=r"says a budget of \$5,000 and --budget says \$6,000"):
        parse_objective("Grow paying customers in the EU with $5,000", settings, VOCAB, budget_usd=6000, months=1)


def test_vocabulary_comes_from_the_warehouse(con, settings):
    v = vocabulary(con, settings)
    assert v.dimension_values["region"] == ("EU", "NA") and v.dimension_values["persona"] == ("engineer", "marketer")
    assert v.channels == ("email", "organic", "paid_search", "paid_social")


# -- the context providers ----------------------------------------------------------------------------------------


def test_every_provider_is_a_tool_with_a_json_schema():
    described = tools()
    assert [t["name"] for t in described] == list(PROVIDERS)
    assert all(t["description"] and t["parameters"]["type"] == "object" for t in described)
    json.dumps(described)


def test_goal_baseline_counts_the_segment_and_its_weekly_trend(ctx):
    f = PROVIDERS["goal_baseline"](ctx, metric="paying_customers", segment=EU, weeks=4)
    assert f.available and f.value["baseline"] == 20
    # EU payers joined every 3 days back from 2026-03-31: days 0..27 of a 28-day window hold i = 0..9
    assert sum(w["joined"] for w in f.value["weekly"]) == 10 and len(f.value["weekly"]) == 4
    assert "order_count > 0" in f.queries[0]["sql"] and f.queries[0]["params"] == ["EU"]
    json.dumps(f.as_dict())


def test_segment_size_counts_consented_reach(ctx):
    f = PROVIDERS["segment_size"](ctx, segment=EU)
    eu = range(40)
    assert f.value["customers"] == 40 and f.value["paying"] == 20
    assert f.value["reachable_with_consent"] == {
        "email_marketing": sum(1 for i in eu if i % 3),
        "ad_personalization": sum(1 for i in eu if i % 4),
    }
    assert f.value["emailable_not_paying"] == sum(1 for i in range(20, 40) if i % 3)
    assert f.value["reachable_not_paying"] == {
        "email_marketing": sum(1 for i in range(20, 40) if i % 3),
        "ad_personalization": sum(1 for i in range(20, 40) if i % 4),
    }


def test_channel_rates_give_cac_with_an_interval(ctx):
    f = PROVIDERS["channel_rates"](ctx, segment=EU)
    by = {c["channel"]: c for c in f.value["channels"]}
    search = by["paid_search"]
    assert search["cost_usd"] == 5600 and search["outcomes"] == 28
    assert search["cac_usd"]["lower"] < 5600 / 28.5 < search["cac_usd"]["upper"]
    assert search["per_dollar"]["mean"] == pytest.approx(28.5 / 5601, rel=1e-4)
    assert by["email"]["cost_per_send_usd"] == pytest.approx(2 / 400)
    assert "skipped" in by["organic"] and "per_dollar" not in by["organic"]
    assert f.value["window"] == {"start": "2026-02-04", "end": "2026-03-31", "days": 56}
    # a segment dimension the channel table lacks: rates over all of it, and the fact says so
    persona = PROVIDERS["channel_rates"](ctx, segment=(SegmentFilter(dimension="persona", values=("marketer",)),))
    assert "no column persona" in persona.value["note"]
    assert {c["channel"]: c["cost_usd"] for c in persona.value["channels"]}["paid_search"] == 56 * (100 + 80)


def test_lookalike_bandit_insights_and_spend(ctx):
    pool = PROVIDERS["lookalike_pool"](ctx, segment=EU)
    assert pool.value["audiences"] == {"high_value": {"1": 10, "2": 10}}
    winners = PROVIDERS["bandit_winners"](ctx).value["winners"]
    assert [(w["experiment_id"], w["variant_id"]) for w in winners] == [("nurture_subject", "b")]
    assert [i["insight_id"] for i in PROVIDERS["open_insights"](ctx).value["insights"]] == ["i1"]
    spend = PROVIDERS["spend_to_date"](ctx, segment=EU).value
    assert spend["total_usd"] == 56 * (100 + 50 + 2)


def test_a_missing_table_is_a_fact_not_an_error(bare, settings):
    ctx = Context(bare, settings, as_of(bare, settings))
    for name in ("lookalike_pool", "bandit_winners", "open_insights"):
        f = PROVIDERS[name](ctx)
        assert not f.available and "is not in the warehouse" in f.reason
        assert f.as_dict()["reason"].startswith("not available: ")
    empty = duckdb.connect()
    f = PROVIDERS["channel_rates"](Context(empty, settings, None))
    assert not f.available and "marts.fct_channel_performance is not in the warehouse" in f.reason


def test_a_partial_warehouse_still_plans_with_what_it_has(bare, settings, tmp_path):
    d = store.draft(bare, settings, "Expand paying customers in the EU", budget_usd=20000, months=3)
    path, _ = store.write(tmp_path, d)
    bp = store.validate(path)
    ids = [s.id for s in bp.steps]
    assert "lookalike_pool" not in ids and "channel_budget_paid_search" in ids
    assert next(s for s in bp.steps if s.id == "nurture_email").params["experiments"] == []
    notes = " ".join(bp.planner.notes)
    assert "no lookalike step: ml.lookalike_scores is not in the warehouse" in notes
    assert "bandit_winners: not available: experiments.bandit_allocations is not in the warehouse" in notes
    with pytest.raises(ObjectiveError, match="has no region column or is not built"):
        parse_objective("grow paying customers in Europe", settings, Vocabulary(), budget_usd=10, months=1)
    with pytest.raises(GoalError, match="no baseline for paying_customers: marts.dim_customer_features is not"):
        store.draft(duckdb.connect(), settings, "grow paying customers", budget_usd=10, months=1)


# -- the goal -----------------------------------------------------------------------------------------------------


def test_gamma_interval_narrows_with_data():
    wide = gamma_rate_interval(2, 400, 0.5, 1.0, 0.9)
    narrow = gamma_rate_interval(200, 40000, 0.5, 1.0, 0.9)
    assert wide[0] < narrow[0] < narrow[2] < wide[2]
    assert narrow[1] == pytest.approx(200.5 / 40001, rel=1e-5)


def _goal(con, settings, text, **kw):
    d = store.draft(con, settings, text, **kw)
    return d


def test_reachable_goal_shows_its_arithmetic(con, settings):
    d = _goal(con, settings, "Grow paying customers in the EU by 10%", budget_usd=20000, months=3)
    g = d.goal
    assert g.status == "reachable" and g.baseline == 20 and g.needed_gain == 2 and g.target_value == 22
    by = {a.channel: a for a in g.allocations}
    # cheapest first: paid_search absorbs 3 × $100/day × 91 days = $27,300, so it takes all $20,000
    # email is cheapest per customer but capped by its audience: 13 emailable non-payers × 4 sends × $0.005
    assert by["email"].budget_usd == pytest.approx(13 * 4 * 0.005) and by["paid_social"].budget_usd == 0
    assert by["paid_search"].budget_usd == pytest.approx(20000 - 0.26)
    assert by["paid_search"].expected == pytest.approx(by["paid_search"].budget_usd * 28.5 / 5601, rel=1e-6)
    assert g.gain_lower < g.expected_gain < g.gain_upper
    assert any(line.startswith("  paid_search: 28.0 / $5,600 = CAC $196.53") for line in g.lines)
    assert g.lines[-1] == "Goal: 20 + 2 = 22."


def test_unreachable_goal_offers_the_budget_or_horizon_that_reaches_it(con, settings):
    g = _goal(con, settings, "Grow paying customers in the EU by 200 customers", budget_usd=10000, months=1).goal
    assert g.status == "unreachable" and g.needed_gain == 200
    assert g.statement().startswith("Unreachable: ")
    # one month: capacity 3 × (100 + 50 + 2) × 30 days ≈ $13.9k buys about 60: no budget reaches 200 in a month
    assert g.offers[0].startswith("No budget reaches it in 1 months")
    assert g.offers[1].startswith("No horizon up to 24 months reaches it with $10,000")
    # 4 months (122 days): paid search absorbs 3 × $100 × 122 = $36,600 (186 customers), paid social ≈ $5,200 more
    months = int(g.offers[2].split(" over ")[1].split(" ")[0])
    both = float(g.offers[2].split("$")[1].split(" ")[0].replace(",", ""))
    assert g.offers[2].startswith("Both would: $") and months == 4 and 41000 < both < 42500
    g = _goal(con, settings, "Grow paying customers in the EU by 60", budget_usd=10000, months=3).goal
    assert g.status == "unreachable"
    budget = float(g.offers[0].split("$")[1].split(" ")[0].replace(",", ""))
    assert 11000 < budget < 13000  # ≈ 60 / (28.5/5601) = $11,791 on paid_search, rounded up to $100
    g = _goal(con, settings, "Grow paying customers in the EU by 60", budget_usd=20000, months=1).goal
    assert g.status == "unreachable" and "A horizon of 2 months would reach it with $20,000." in g.offers


def test_a_channel_with_cost_but_no_customer_is_left_out_not_priced_by_the_prior(warehouse, settings, tmp_path):
    """$40/day of display with no new customer in 56 days: the Gamma prior alone would give it a CAC; the goal
    leaves it out and says why, and spends nothing on it."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, path)
    with duckdb.connect(str(path)) as w:
        w.execute(
            "insert into marts.fct_channel_performance select date_day, 'display', 'EU', 40.0, 40.0, 0, 0.0, 0.0, 0.0 "
            "from (select distinct date_day from marts.fct_channel_performance)"
        )
    with duckdb.connect(str(path), read_only=True) as c:
        g = _goal(c, settings, "Grow paying customers in the EU", budget_usd=10000, months=1).goal
    assert any(line.startswith("  display: 0 new_customers / $2,240 in the window: left out") for line in g.lines)
    assert "display" not in {a.channel for a in g.allocations}
    assert any(a.channel == "paid_search" and a.budget_usd > 0 for a in g.allocations)


def test_no_priced_channel_is_a_goal_error(con, settings):
    with pytest.raises(GoalError, match="no channel with cost .*excluded: email, paid_search, paid_social"):
        store.draft(
            con,
            settings,
            "grow paying customers in the EU without paid search, without paid social and without email",
            budget_usd=1000,
            months=1,
        )


# -- the plan, its file, validation, diff, approval ----------------------------------------------------------------


@pytest.fixture()
def written(con, settings, tmp_path):
    d = store.draft(con, settings, "Expand paying customers in the EU", budget_usd=100000, months=3)
    path, fresh = store.write(tmp_path, d)
    assert fresh
    return path


def test_plan_is_a_valid_dag_whose_budgets_add_up(written):
    bp = store.validate(written)
    ids = [s.id for s in bp.steps]
    assert ids[0] == "segment_audience" and ids[-1] == "weekly_checkpoint"
    assert {"lookalike_pool", "ad_audience_sync", "channel_budget_paid_search", "nurture_email"} <= set(ids)
    assert sum(s.budget_usd for s in bp.steps) == pytest.approx(100000, abs=0.01)
    # $100k is more than 3× the trailing cost of every channel over 91 days: the rest is held back, visibly
    reserve = next(s for s in bp.steps if s.id == "reserve")
    assert reserve.budget_usd == pytest.approx(
        100000 - 3 * 91 * (100 + 50) - next(s.budget_usd for s in bp.steps if s.id == "nurture_email"), abs=0.05
    )
    assert next(s for s in bp.steps if s.id == "nurture_email").params["experiments"] == ["nurture_subject"]
    lookalike = next(s for s in bp.steps if s.id == "lookalike_pool")  # tiers 1 and 2 are inside the top 5 %
    assert lookalike.params == {"audience": "high_value", "top_percent": 5} and lookalike.expected.value == 20
    assert bp.status() == "draft"
    assert (written.parent / f"{bp.blueprint_id}.context.json").exists()


def test_same_warehouse_and_objective_give_the_same_file(con, settings, written, tmp_path_factory):
    again = store.draft(con, settings, "Expand paying customers in the EU", budget_usd=100000, months=3)
    path, _ = store.write(tmp_path_factory.mktemp("again"), again)
    assert path.name == written.name and path.read_text() == written.read_text()
    reworded = store.draft(con, settings, "grow  the paying customers of Europe", budget_usd=100000, months=3)
    assert reworded.blueprint.blueprint_id == again.blueprint.blueprint_id
    assert reworded.blueprint.steps == again.blueprint.steps


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_validate_rejects_a_cycle_naming_it(written):
    def cycle(data):
        steps = {s["id"]: s for s in data["steps"]}
        steps["segment_audience"]["depends_on"] = ["crm_routing"]

    _edit(written, cycle)
    with pytest.raises(store.BlueprintInvalid) as err:
        store.validate(written)
    assert "dependencies must not form a cycle: segment_audience → crm_routing → segment_audience" in str(err.value)


def test_validate_rejects_a_budget_that_does_not_add_up(written):
    def overspend(data):
        step = next(s for s in data["steps"] if s["id"] == "channel_budget_paid_search")
        step["budget_usd"] = step["budget_usd"] + 5000

    _edit(written, overspend)
    with pytest.raises(store.BlueprintInvalid) as err:
        store.validate(written)
    message = str(err.value)
    assert "but budget_usd is $100,000.00: $5,000.00 over" in message and "channel_budget_paid_search $" in message
    assert "budget_usd (line" in message


def test_validate_rejects_unknown_references_types_and_params(written):
    def break_it(data):
        data["steps"][1]["depends_on"] = ["no_such_step"]
        data["steps"][0]["params"]["colour"] = "blue"
        data["steps"][2]["type"] = "carrier_pigeon"

    _edit(written, break_it)
    with pytest.raises(store.BlueprintInvalid) as err:
        store.validate(written)
    text = str(err.value)
    assert (
        "steps[1].depends_on[0]" in text
        and "unknown step reference 'no_such_step'; steps are: segment_audience" in text
    )
    assert "steps[0].params.colour" in text and "steps[2].type" in text and "carrier_pigeon" in text


def test_schema_errors_name_key_and_line(written):
    _edit(written, lambda data: data["steps"][0].update(budget_usd="lots"))
    with pytest.raises(ConfigError) as err:
        store.validate(written)
    assert "steps[0].budget_usd (line" in str(err.value)


def test_find_cycle_on_plain_edges():
    from mos_pipelines.blueprint.plan import Step

    steps = tuple(
        Step(id=i, type="reserve", title=i, budget_usd=0, depends_on=d)
        for i, d in (("a", ()), ("b", ("a", "d")), ("c", ("b",)), ("d", ("c",)))
    )
    assert find_cycle(steps) == ["b", "d", "c", "b"]
    assert find_cycle(steps[:1]) is None


def test_approve_records_who_and_a_hash_and_an_edit_unapproves(written):
    approved = store.approve(written, by="ana", at=datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC))
    again, _ = store.load(written)
    assert again.status() == "approved" and again.approval.by == "ana"
    assert again.approval.at == "2026-12-06T12:00:00+00:00" and again.approval.content_hash == approved.content_hash()
    assert again.revision == 1  # nothing changed since it was generated

    def move_budget(data):
        steps = {s["id"]: s for s in data["steps"]}
        steps["channel_budget_paid_search"]["budget_usd"] -= 1000
        steps["reserve"]["budget_usd"] += 1000

    _edit(written, move_budget)
    edited, _ = store.load(written)
    assert edited.status() == "edited after approval"
    store.approve(written, by="ben")
    final, _ = store.load(written)
    assert final.status() == "approved" and final.revision == 2 and final.approval.by == "ben"
    kept = store.revisions(written.parent, final.blueprint_id)
    assert [p.name for p in kept] == ["r1.yaml", "r2.yaml"]
    first, _ = store.load(kept[0])
    changes = store.diff(first, final)
    assert any(c.startswith("~ step channel_budget_paid_search.budget_usd:") for c in changes)
    assert any(c.startswith("~ step reserve.budget_usd:") for c in changes)
    assert not any("approval" in c for c in changes)


def test_approve_refuses_an_invalid_plan(written):
    _edit(written, lambda data: data["steps"][0].update(budget_usd=1.0))
    with pytest.raises(store.BlueprintInvalid):
        store.approve(written, by="ana")
    bp, _ = store.load(written)
    assert bp.approval is None


def test_diff_lists_added_and_removed_steps(written):
    old, _ = store.load(written)
    _edit(written, lambda data: data.update(steps=[s for s in data["steps"] if s["id"] != "crm_routing"]))
    new, _ = store.load(written)
    assert store.diff(old, new) == ["- step crm_routing (crm_sync, $0.00)"]


def test_objective_file(tmp_path):
    good = tmp_path / "objective.yaml"
    good.write_text("objective: Expand paying customers in the EU\nbudget_usd: 100000\nhorizon_months: 3\n")
    assert store.read_objective_file(good) == {
        "text": "Expand paying customers in the EU",
        "budget_usd": 100000,
        "months": 3,
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("objective: Expand paying customers\nbudget: 100000\n")
    with pytest.raises(ConfigError, match=r"budget \(line 2\): expected one of budget_usd, horizon_months, objective"):
        store.read_objective_file(bad)


# -- the command --------------------------------------------------------------------------------------------------


def test_cli_new_validate_edit_diff_approve(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mos_pipelines.cli import app

    home = tmp_path / "home"
    home.mkdir()
    build_warehouse(home / "warehouse.duckdb")
    monkeypatch.setenv("MOS_HOME", str(home))
    runner = CliRunner()
    made = runner.invoke(
        app,
        ["blueprint", "new", "--objective", "Expand paying customers in the EU", "--budget", "20000", "--months", "3"],
    )
    assert made.exit_code == 0, made.output
    assert "Goal: +" in made.output and "channel_budget_paid_search" in made.output
    path = next((home / "blueprints").glob("bp_*.yaml"))
    bid = path.stem
    assert runner.invoke(app, ["blueprint", "validate", bid]).exit_code == 0

    _edit(path, lambda data: data["steps"][0].update(budget_usd=500.0))
    bad = runner.invoke(app, ["blueprint", "validate", bid])
    assert bad.exit_code == 2 and "$500.00 over" in bad.output
    changed = runner.invoke(app, ["blueprint", "diff", bid])
    assert changed.exit_code == 0 and "~ step segment_audience.budget_usd: 0.0 -> 500.0" in changed.output
    assert runner.invoke(app, ["blueprint", "approve", bid, "--by", "ana"]).exit_code == 2

    _edit(path, lambda data: data["steps"][0].update(budget_usd=0.0))
    ok = runner.invoke(app, ["blueprint", "approve", bid, "--by", "ana"])
    assert ok.exit_code == 0 and "approved " + bid in ok.output

    missing = runner.invoke(app, ["blueprint", "validate", "bp_nope"])
    assert missing.exit_code == 2 and "no blueprint 'bp_nope'" in missing.output and bid in missing.output
    unclear = runner.invoke(
        app, ["blueprint", "new", "--objective", "Grow customers in the EU", "--budget", "10", "--months", "1"]
    )
    assert unclear.exit_code == 2 and "known_customers" in unclear.output and "paying_customers" in unclear.output
    spec = tmp_path / "objective.yaml"
    spec.write_text("objective: Expand paying customers in the EU\nbudget_usd: 20000\nhorizon_months: 3\n")
    again = runner.invoke(app, ["blueprint", "new", "--file", str(spec)])
    assert again.exit_code == 0 and "Kept the existing file" in again.output  # same objective, same id
    monkeypatch.setenv("MOS_HOME", str(tmp_path / "empty"))
    nothing = runner.invoke(
        app, ["blueprint", "new", "--objective", "Expand paying customers in the EU", "--budget", "10", "--months", "1"]
    )
    assert nothing.exit_code == 2 and "No warehouse at" in nothing.output and "mos run" in nothing.output


# -- the LLM path (a hosted model's answer given by litellm's mock_response: nothing leaves the machine) ----------


@pytest.fixture
def no_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network unreachable in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _llm(tmp_path, intake: dict | None, plan: dict | None):
    from mos_pipelines.configuration import load_llm
    from mos_pipelines.llm import LLM, Ledger

    def task(answer):
        if answer is None:
            return {"model": "mos-offline/blueprint", "fallbacks": []}
        return {"model": "gpt-4o-mini", "fallbacks": [], "extra": {"mock_response": json.dumps(answer)}}

    path = tmp_path / "llm.yaml"
    path.write_text(yaml.safe_dump({"tasks": {"blueprint_intake": task(intake), "blueprint_planning": task(plan)}}))
    con = duckdb.connect()
    return LLM(load_llm(path), Ledger(con)), con


def test_offline_llm_config_is_the_deterministic_path(con, settings, tmp_path, no_network):
    llm, ledger = _llm(tmp_path, None, None)
    with_llm = store.draft(con, settings, "Expand paying customers in the EU", 20000, 3, llm=llm)
    without = store.draft(con, settings, "Expand paying customers in the EU", 20000, 3)
    assert with_llm.blueprint == without.blueprint
    assert ledger.execute("select count(*) from ops.llm_calls").fetchall()[0][0] == 0


def test_a_valid_llm_objective_is_used_and_an_invalid_llm_plan_replaced(con, settings, tmp_path, no_network):
    base = store.draft(con, settings, "Expand paying customers in the EU", 20000, 3).blueprint
    cyclic = {"steps": [s.model_dump(mode="json") for s in base.steps]}
    cyclic["steps"][0]["depends_on"] = ["weekly_checkpoint"]
    intake = {
        "metric": "paying_customers",
        "segment": [{"dimension": "region", "values": ["EU"]}],
        "budget_usd": 20000,
        "horizon_months": 3,
    }
    llm, ledger = _llm(tmp_path, intake, cyclic)
    d = store.draft(con, settings, "Get Europe's buyers up, twenty grand, one quarter", llm=llm)
    assert d.blueprint.objective.segment == EU and d.blueprint.objective.budget_usd == 20000
    assert d.blueprint.planner.kind == "rule_based" and d.blueprint.steps == base.steps
    notes = " ".join(d.blueprint.planner.notes)
    assert "objective read by gpt-4o-mini" in notes and "LLM plan not used" in notes and "cycle" in notes
    rows = ledger.execute("select task, outcome from ops.llm_calls order by task").fetchall()
    assert rows == [("blueprint_intake", "ok"), ("blueprint_planning", "rejected")]


def test_a_valid_llm_plan_is_used_and_an_llm_objective_outside_the_warehouse_is_not(
    con, settings, tmp_path, no_network
):
    base = store.draft(con, settings, "Expand paying customers in the EU", 20000, 3).blueprint
    steps = [s.model_dump(mode="json") for s in base.steps if s.id != "crm_routing"]
    steps[-1]["depends_on"] = [d for d in steps[-1]["depends_on"] if d != "crm_routing"]
    intake = {"metric": "paying_customers", "segment": [{"dimension": "region", "values": ["Mars"]}]}
    llm, _ = _llm(tmp_path, intake, {"steps": steps})
    d = store.draft(con, settings, "Expand paying customers in the EU", 20000, 3, llm=llm)
    assert d.blueprint.objective.segment == EU  # the offline parser read it
    assert "Mars" in " ".join(d.blueprint.planner.notes)
    assert d.blueprint.planner.kind == "llm" and "crm_routing" not in [s.id for s in d.blueprint.steps]


def test_the_goal_is_recomputed_from_the_steps_as_a_person_edited_them(written, settings):
    bp = store.validate(written)
    same = store.recompute_goal(written, bp, settings)
    assert same is not None and not same.changed and same.expected == pytest.approx(bp.goal["expected_gain"], abs=0.05)

    def move(data):  # $5,000 from paid search to paid social (whose 3 × $50 × 91 = $13,650 is already all planned)
        for step in data["steps"]:
            if step["id"] == "channel_budget_paid_search":
                step["budget_usd"] = round(step["budget_usd"] - 5000, 2)
            if step["id"] == "channel_budget_paid_social":
                step["budget_usd"] = round(step["budget_usd"] + 5000, 2)

    _edit(written, move)
    edited = store.validate(written)
    again = store.recompute_goal(written, edited, settings)
    assert again is not None and again.changed
    # paid search loses $5,000 at its CAC of about $196 (28.5 customers / $5,600 over 56 days with the prior)
    assert bp.goal["expected_gain"] - again.expected == pytest.approx(5000 * 28.5 / 5600.5, rel=0.02)
    assert any(
        "paid_social" in line and "$5,000 above what it absorbs ($13,650) buys nothing measured" in line
        for line in again.lines
    )
    assert again.lower < again.expected < again.upper
