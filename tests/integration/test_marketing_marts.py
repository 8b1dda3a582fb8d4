"""Marketing marts against the simulator's truth: a clean world (no dirty rows) built through Dagster.

Every KPI of fct_channel_performance per channel × region is recomputed with pandas from the
truth files alone (ad_spend.parquet, email_sends.parquet, sessions.parquet, orders.parquet,
fx_rates.csv), never from the marts' SQL. Dirty-data rates are 0 in this world's scenario, so
nothing is quarantined and no event arrives after the horizon: the marts must equal the truth.
The default attribution model (last_touch) credits each order to the visit it happened in, so the
truth's order channel is the expected channel.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mos_pipelines.simulation import WorldConfig

from .conftest import World, build_world

DIRTY_SOURCES = ("events", "orders", "email", "crm_contacts", "consent", "ad_spend", "crm_notes")
CLEAN_SCENARIO = "name: clean\ndirty:\n" + "".join(
    f"  {source}: {{malformed_rate: 0.0, missing_id_rate: 0.0"
    + (", duplicate_rate: 0.0" if source in ("events", "orders", "email") else "")
    + (", late_rate: 0.0" if source == "events" else "")
    + "}\n"
    for source in DIRTY_SOURCES
)
KPIS = (
    "spend_usd",
    "impressions",
    "clicks",
    "sends",
    "cost_usd",
    "sessions",
    "conversions",
    "new_customers",
    "revenue_usd",
    "cac_usd",
    "cpa_usd",
    "roas",
    "roi",
)


@pytest.fixture(scope="module")
def clean_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("marketing")
    scenario = folder / "clean.yaml"
    scenario.write_text(CLEAN_SCENARIO)
    yield build_world(folder / "mos_home", WorldConfig(seed=5, people=400, days=7, scenario=scenario))


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def expected_kpis(truth: Path, regionless_emails: set[str]) -> pd.DataFrame:
    """Channel × region KPIs from the truth files; sends to ``regionless_emails`` under region `unknown`."""
    fx = pd.read_csv(truth / "fx_rates.csv").set_index("currency")["usd_per_unit"]

    spend = pd.read_parquet(truth / "ad_spend.parquet")
    spend = spend.assign(spend_usd=spend["spend"] * spend["currency"].map(fx))
    ads = spend.groupby(["channel", "region"])[["spend_usd", "impressions", "clicks"]].sum()

    sends = pd.read_parquet(truth / "email_sends.parquet")
    sends["region"] = sends["region"].where(~sends["recipient_email"].str.lower().isin(regionless_emails), "unknown")
    email = sends.assign(
        channel="email",
        sends=sends["sent"].astype(int),
        email_clicks=sends["clicked"].astype(int),
        send_cost_usd=sends["cost_usd"].where(sends["sent"], 0.0),
    )
    email = email.groupby(["channel", "region"])[["sends", "email_clicks", "send_cost_usd"]].sum()

    sessions = pd.read_parquet(truth / "sessions.parquet")
    visits = sessions.assign(sessions=1).groupby(["channel", "region"])[["sessions"]].sum()

    orders = pd.read_parquet(truth / "orders.parquet")
    completed = orders[orders["status"] == "completed"].sort_values(["created_at", "order_id"])
    completed = completed.assign(
        revenue_usd=completed["amount"] * completed["currency"].map(fx),
        conversions=1.0,
        new_customers=(~completed["person_id"].duplicated()).astype(float),
    )
    sales = completed.groupby(["channel", "region"])[["conversions", "new_customers", "revenue_usd"]].sum()

    frame = pd.concat([ads, email, visits, sales], axis=1).fillna(0)
    frame.index.names = ["channel", "region"]
    for column in (
        "spend_usd",
        "send_cost_usd",
        "impressions",
        "clicks",
        "email_clicks",
        "sends",
        "sessions",
        "conversions",
        "new_customers",
        "revenue_usd",
    ):
        if column not in frame:
            frame[column] = 0
    frame["clicks"] = frame["clicks"] + frame["email_clicks"]  # ad clicks (platform reports) + email clicks
    frame["cost_usd"] = frame["spend_usd"] + frame["send_cost_usd"]
    frame["cac_usd"] = [_ratio(c, n) for c, n in zip(frame["cost_usd"], frame["new_customers"])]
    frame["cpa_usd"] = [_ratio(c, n) for c, n in zip(frame["cost_usd"], frame["conversions"])]
    frame["roas"] = [_ratio(r, c) for r, c in zip(frame["revenue_usd"], frame["cost_usd"])]
    frame["roi"] = [_ratio(r - c, c) for r, c in zip(frame["revenue_usd"], frame["cost_usd"])]
    return frame[list(KPIS)].sort_index()


def regionless_emails(world: World) -> set[str]:
    """Recipients whose region no landed record tells: no consent row names their address, and the
    identity map knows nothing else of the customer with that address (people who only ever received
    email and gave consent under their user id). The marts must report them under region `unknown`."""
    consent = pd.concat(
        pd.read_csv(f, dtype=str) for f in (world.settings.mos_home / "landing" / "consent").glob("*.csv")
    )
    with world.connect() as con:
        known = set(
            con.sql(
                """select node_value from marts.dim_customer_identity_map m
            where node_type = 'email'
              and (select count(*) from marts.dim_customer_identity_map o where o.customer_id = m.customer_id) > 1"""
            ).df()["node_value"]
        )
    sends = pd.read_parquet(world.settings.truth_dir / "email_sends.parquet")
    emails = set(sends["recipient_email"].str.lower())
    return {e for e in emails if e not in set(consent["subject"].str.lower()) and e not in known}


def mart_kpis(world: World) -> pd.DataFrame:
    """The mart summed to channel × region, ratios recomputed from its summed parts."""
    with world.connect() as con:
        mart = con.sql("select * from marts.fct_channel_performance").df()
    sums = mart.groupby(["channel", "region"])[
        [
            "spend_usd",
            "impressions",
            "clicks",
            "sends",
            "cost_usd",
            "sessions",
            "conversions",
            "new_customers",
            "revenue_usd",
        ]
    ].sum()
    sums["cac_usd"] = [_ratio(c, n) for c, n in zip(sums["cost_usd"], sums["new_customers"])]
    sums["cpa_usd"] = [_ratio(c, n) for c, n in zip(sums["cost_usd"], sums["conversions"])]
    sums["roas"] = [_ratio(r, c) for r, c in zip(sums["revenue_usd"], sums["cost_usd"])]
    sums["roi"] = [_ratio(r - c, c) for r, c in zip(sums["revenue_usd"], sums["cost_usd"])]
    return sums[list(KPIS)].sort_index()


def test_clean_world_builds_with_the_marketing_unit_tests(clean_world: World) -> None:
    assert clean_world.first_run.success, clean_world.first_run.failures
    assert clean_world.manifest["totals"]["events"]["rows_malformed"] == 0
    with clean_world.connect() as con:
        assert con.sql("select count(*) from raw.quarantine").fetchall()[0][0] == 0


def test_every_kpi_per_channel_and_region_matches_the_truth(clean_world: World) -> None:
    expected = expected_kpis(clean_world.settings.truth_dir, regionless_emails(clean_world))
    actual = mart_kpis(clean_world)
    assert expected["conversions"].sum() >= 5 and expected["spend_usd"].sum() > 0 and expected["sends"].sum() > 0
    assert list(actual.index) == list(expected.index), "channel × region cells differ"
    for kpi in KPIS:
        for cell, want in expected[kpi].items():
            got = actual.at[cell, kpi]
            if want is None or (isinstance(want, float) and math.isnan(want)):
                assert got is None or math.isnan(got), f"{kpi} at {cell}: expected null, got {got}"
            else:
                assert got == pytest.approx(want, rel=1e-9, abs=1e-6), f"{kpi} at {cell}: {got} != {want}"


def test_ratios_in_the_mart_match_its_own_sums_and_are_null_without_denominator(clean_world: World) -> None:
    with clean_world.connect() as con:
        mart = con.sql("select * from marts.fct_channel_performance").df()
    ratios = {
        "cac_usd": ("cost_usd", "new_customers"),
        "cpa_usd": ("cost_usd", "conversions"),
        "cvr": ("conversions", "sessions"),
        "ctr": ("clicks", "impressions"),
        "roas": ("revenue_usd", "cost_usd"),
    }
    for ratio, (numerator, denominator) in ratios.items():
        zero = mart[denominator] == 0
        assert zero.any() and (~zero).any(), f"{ratio}: the world must have rows with and without a denominator"
        assert mart.loc[zero, ratio].isna().all(), f"{ratio} must be null where {denominator} is 0"
        values = mart.loc[~zero, ratio].to_numpy(dtype=float)
        assert np.isfinite(values).all()
        np.testing.assert_allclose(
            values, (mart.loc[~zero, numerator] / mart.loc[~zero, denominator]).to_numpy(), rtol=1e-9
        )
    no_cost = mart["cost_usd"] == 0
    assert mart.loc[no_cost, "roi"].isna().all()
    assert mart.loc[no_cost & (mart["revenue_usd"] > 0)].shape[0] > 0  # organic / direct revenue without cost


def test_attribution_credits_sum_to_one_for_every_conversion_and_model(clean_world: World) -> None:
    with clean_world.connect() as con:
        credits = con.sql("""
            select c.conversion_id, m.attribution_model, sum(a.credit) as credit_sum, count(a.credit) as touches
            from marts.fct_conversions as c
            cross join (select distinct attribution_model from marts.fct_attributed_conversions) as m
            left join marts.fct_attributed_conversions as a
                on a.conversion_id = c.conversion_id and a.attribution_model = m.attribution_model
            group by all
        """).df()
    assert set(credits["attribution_model"]) == {"first_touch", "last_touch", "linear", "position_based"}
    assert len(credits) == 4 * credits["conversion_id"].nunique() > 0
    np.testing.assert_allclose(credits["credit_sum"].to_numpy(dtype=float), 1.0, rtol=0, atol=1e-9)
    multi = credits[(credits["attribution_model"] == "linear") & (credits["touches"] > 1)]
    assert len(multi) > 0, "the world must have conversions with several touches"


def test_each_completed_order_is_one_order_conversion_with_its_usd_revenue(clean_world: World) -> None:
    truth = clean_world.settings.truth_dir
    fx = pd.read_csv(truth / "fx_rates.csv").set_index("currency")["usd_per_unit"]
    orders = pd.read_parquet(truth / "orders.parquet")
    completed = orders[orders["status"] == "completed"]
    with clean_world.connect() as con:
        conversions = con.sql(
            "select order_id, revenue_usd from marts.fct_conversions where conversion_type = 'order'"
        ).df()
        ltv = con.sql("select sum(order_count), sum(revenue_usd) from marts.dim_customer_ltv").fetchall()[0]
    merged = completed.merge(conversions, on="order_id", how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    np.testing.assert_allclose(merged["revenue_usd"], merged["amount"] * merged["currency"].map(fx), rtol=1e-12)
    assert ltv[0] == len(completed)
    assert ltv[1] == pytest.approx((completed["amount"] * completed["currency"].map(fx)).sum(), rel=1e-12)


def test_variant_lift_is_null_without_a_holdout_population(clean_world: World) -> None:
    truth = clean_world.settings.truth_dir
    sends = pd.read_parquet(truth / "email_sends.parquet")
    with clean_world.connect() as con:
        variants = con.sql("select * from marts.fct_variant_performance").df()
    assert variants["sends"].sum() == int(sends["sent"].sum())
    assert variants["clicks"].sum() == int(sends["clicked"].sum())
    assert not variants["is_holdout"].any()  # holdout recipients receive nothing the ESP reports
    assert variants["cvr_lift"].isna().all()


def test_semantic_layer_answers_the_kpis_as_the_mart_does(clean_world: World, tmp_path: Path) -> None:
    """`mf query` (MetricFlow over the dbt semantic layer) returns the mart's KPIs per channel × region."""
    import os
    import subprocess
    import sys

    from mos_pipelines.settings import DBT_PROJECT_DIR
    from mos_pipelines.transform.project import ensure_manifest

    ensure_manifest()  # writes target/semantic_manifest.json next to the manifest
    out = tmp_path / "kpis.csv"
    metrics = "spend,cost,impressions,clicks,sends,sessions,conversions,new_customers,revenue,cac,cpa,roas,roi"
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "mf"),
            "query",
            "--metrics",
            metrics,
            "--group-by",
            "channel_performance__channel,channel_performance__region",
            "--csv",
            str(out),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, "MOS_HOME": str(clean_world.settings.mos_home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answered = (
        pd.read_csv(out, keep_default_na=False, na_values=[""])
        .rename(
            columns={  # region "NA" is not null
                "channel_performance__channel": "channel",
                "channel_performance__region": "region",
                "spend": "spend_usd",
                "cost": "cost_usd",
                "revenue": "revenue_usd",
                "cac": "cac_usd",
                "cpa": "cpa_usd",
            }
        )
        .set_index(["channel", "region"])
        .sort_index()
    )
    expected = mart_kpis(clean_world)
    assert list(answered.index) == list(expected.index)
    for kpi in KPIS:
        for cell, want in expected[kpi].items():
            got = answered.at[cell, kpi]
            if want is None or (isinstance(want, float) and math.isnan(want)):
                assert pd.isna(got), f"{kpi} at {cell}: expected null, got {got}"
            else:
                assert got == pytest.approx(want, rel=1e-9, abs=1e-6), f"{kpi} at {cell}: {got} != {want}"
