"""Customer marts (dim_customer_consents, dim_customer_lifecycle, dim_account_buying_groups, dim_customer_features) on a
small world built through Dagster, checked against independent pandas recomputations from the landing
files, the simulator's truth and the seeds users edit."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from mos_pipelines.identity.truth_eval import truth_node_key
from tests.integration.conftest import World

pytestmark = pytest.mark.integration

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds"
OPT_IN_REGIONS = {"EU", "UK"}
PURPOSES = ("email_marketing", "ad_personalization", "analytics")
VALID_DIRTY_KINDS = {"duplicate", "late"}  # dirty on purpose but valid: they load
STATUS_SEVERITY = {"revoked": 0, "denied": 1, "granted": 2}  # ties go to the most restrictive


# ---------------------------------------------------------------- independent readers (no dbt SQL)


def dirty_lines(world: World) -> set[tuple[str, int]]:
    """(file relative to landing/, physical line) of every record the contract rejects."""
    dirty = pd.read_csv(world.settings.truth_dir / "dirty_rows.csv", dtype={"file": str, "line": int, "kind": str})
    return {(f, n) for f, n, k in zip(dirty["file"], dirty["line"], dirty["kind"]) if k not in VALID_DIRTY_KINDS}


def landing_csv(world: World, source: str) -> pd.DataFrame:
    """Valid rows of every CSV of a landing source, with their file (malformed rows dropped)."""
    rejected = dirty_lines(world)
    rows = []
    for path in sorted((world.settings.landing_dir / source).glob("*.csv")):
        relative = f"{source}/{path.name}"
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            for record in reader:
                if (relative, reader.line_num) not in rejected:
                    rows.append({**record, "_file": relative})
    return pd.DataFrame(rows)


def landing_events(world: World) -> pd.DataFrame:
    rejected = dirty_lines(world)
    rows = []
    for path in sorted((world.settings.landing_dir / "events").glob("*.jsonl")):
        relative = f"events/{path.name}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip() and (relative, number) not in rejected:
                event = json.loads(line)
                rows.append(
                    {
                        "message_id": event["messageId"],
                        "anonymous_id": event.get("anonymousId"),
                        "user_id": event.get("userId"),
                        "timestamp": event["timestamp"],
                    }
                )
    events = pd.DataFrame(rows).drop_duplicates("message_id", keep="first")
    events["occurred_at"] = pd.to_datetime(events["timestamp"], utc=True).dt.tz_localize(None)
    return events


def email_match_key(address: str) -> str | None:
    address = address.strip().lower()
    if address.count("@") != 1 or " " in address:
        return None
    local, domain = address.split("@")
    local = local.split("+")[0]
    domain = "gmail.com" if domain == "googlemail.com" else domain
    if domain == "gmail.com":
        local = local.replace(".", "")
    return f"{local}@{domain}" if local and "." in domain else None


def utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True).dt.tz_localize(None)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def warehouse(world: World) -> dict[str, pd.DataFrame]:
    assert world.first_run.success, world.first_run.failures
    tables = {
        "customers": "select * from marts.dim_customers",
        "identity_map": "select node_key, customer_id from marts.dim_customer_identity_map",
        "consent": "select * from marts.dim_customer_consents",
        "lifecycle": "select * from marts.dim_customer_lifecycle",
        "features": "select * from marts.dim_customer_features",
        "buying_groups": "select * from marts.dim_account_buying_groups",
        "orders": "select order_id, is_completed from marts.fct_orders",
    }
    with world.connect() as con:
        return {name: con.execute(sql).df() for name, sql in tables.items()}


@pytest.fixture(scope="module")
def node_customer(warehouse: dict[str, pd.DataFrame]) -> dict[str, str]:
    frame = warehouse["identity_map"]
    return dict(zip(frame["node_key"], frame["customer_id"]))


@pytest.fixture(scope="module")
def customer_person(world: World, node_customer: dict[str, str]) -> pd.Series:
    """customer_id → the true person most of its truth-labelled records belong to."""
    truth = pd.read_csv(world.settings.truth_dir / "identity_truth.csv", dtype=str, keep_default_na=False)
    keys = [truth_node_key(s, r) for s, r in zip(truth["source"], truth["source_record_id"])]
    labelled = pd.DataFrame({"customer_id": [node_customer.get(k) for k in keys], "person": truth["true_entity_id"]})
    labelled = labelled.dropna()
    return labelled.groupby("customer_id")["person"].agg(lambda s: s.value_counts().index[0])


@pytest.fixture(scope="module")
def people(world: World) -> pd.DataFrame:
    return pd.read_csv(world.settings.truth_dir / "people.csv", dtype=str, keep_default_na=False).set_index("person_id")


# ---------------------------------------------------------------- tests


def test_every_customer_has_one_stage_one_feature_row_and_every_consent_purpose(warehouse):
    customers = set(warehouse["customers"]["customer_id"])
    for name in ("lifecycle", "features"):
        ids = warehouse[name]["customer_id"]
        assert ids.is_unique and set(ids) == customers, name
    consent = warehouse["consent"]
    assert len(consent) == len(customers) * len(PURPOSES)
    assert set(map(tuple, consent[["customer_id", "purpose"]].to_numpy())) == {
        (c, p) for c in customers for p in PURPOSES
    }
    assert warehouse["buying_groups"]["account_key"].is_unique


def test_consent_current_matches_an_independent_recomputation(world, warehouse, node_customer, customer_person, people):
    events = landing_csv(world, "consent")
    events["node_key"] = [f"email:{email_match_key(s)}" if "@" in s else f"user:{s.strip()}" for s in events["subject"]]
    events["customer_id"] = events["node_key"].map(node_customer)
    events = events.dropna(subset=["customer_id"])
    events["occurred_at"] = utc(events["occurred_at"])
    events["severity"] = events["status"].map(STATUS_SEVERITY)
    latest = (
        events.sort_values(["occurred_at", "severity"], ascending=[True, False])
        .groupby(["customer_id", "purpose"])
        .tail(1)
        .set_index(["customer_id", "purpose"])
    )
    defaults = pd.read_csv(
        SEEDS / "consent_regional_defaults.csv", dtype=str, keep_default_na=False
    )  # "NA" is a region
    default_granted = {
        (r, p): s == "granted"
        for r, p, s in zip(defaults["region"], defaults["consent_purpose"], defaults["default_status"])
    }

    actual = warehouse["consent"].set_index(["customer_id", "purpose"])
    by_event = actual[actual["decided_by"] == "event"]
    # every (customer, purpose) with a landing event is decided by the latest one, and only those
    assert set(by_event.index) == set(latest.index)
    expected = latest.loc[by_event.index]
    assert (by_event["status"] == expected["status"]).all()
    assert (by_event["is_consented"] == (expected["status"] == "granted")).all()
    assert (by_event["source"] == expected["source"]).all()
    assert (by_event["occurred_at"] == expected["occurred_at"]).all()

    # without an event: the default of the customer's true region (EU/UK opt-in: never consented)
    by_default = actual[actual["decided_by"] == "regional_default"].reset_index()
    assert len(by_default) > 0
    by_default["person"] = by_default["customer_id"].map(customer_person)
    known = by_default.dropna(subset=["person"])
    true_region = known["person"].map(people["region"])
    expected_default = [
        r not in OPT_IN_REGIONS and default_granted.get((r, p), False) for r, p in zip(true_region, known["purpose"])
    ]
    agreement = (known["is_consented"].to_numpy() == pd.Series(expected_default).to_numpy()).mean()
    assert len(known) >= 30 and agreement >= 0.95, agreement
    opt_in = by_default[by_default["region"].isin(OPT_IN_REGIONS)]
    assert len(opt_in) > 0 and not opt_in["is_consented"].any()


def test_lifecycle_stages_are_consistent_with_the_rules(world, warehouse, node_customer):
    orders = landing_csv(world, "orders").drop_duplicates("order_id", keep="last")
    completed = orders[orders["status"].str.strip().str.lower() == "completed"]
    buyers = {node_customer[f"order:{o}"] for o in completed["order_id"] if f"order:{o}" in node_customer}
    lifecycle = warehouse["lifecycle"].set_index("customer_id")
    stage = lifecycle["lifecycle_stage"]
    buying_stages = stage.isin(["customer", "churn_risk"])
    assert buying_stages.sum() > 0
    assert set(stage[buying_stages].index) == buyers  # every customer has an order, every buyer is one
    rules = pd.read_csv(SEEDS / "lifecycle_rules.csv")
    assert (lifecycle["stage_rule_id"].dropna().isin(rules["rule_id"])).all()
    rule_stage = dict(zip(rules["rule_id"], rules["stage"]))
    decided = lifecycle.dropna(subset=["stage_rule_id"])
    assert (decided["stage_rule_id"].map(rule_stage) == decided["lifecycle_stage"]).all()
    # no rule matched -> nothing identifies the customer: no CRM record, user id or email
    customers = warehouse["customers"].set_index("customer_id")
    visitors = customers.loc[stage[stage == "visitor"].index]
    assert len(visitors) > 0
    assert (visitors[["crm_record_count", "user_id_count", "email_count"]].sum(axis=1) == 0).all()
    leads_or_later = customers.loc[stage[stage.isin(["lead"])].index]
    assert ((leads_or_later["crm_record_count"] > 0) | (leads_or_later["user_id_count"] > 0)).all()
    assert lifecycle["stage_reason"].notna().all()


def test_feature_values_match_landing_files_for_a_sample(world, warehouse, node_customer):
    features = warehouse["features"].set_index("customer_id")
    events = landing_events(world)
    events["customer_id"] = [
        node_customer.get(f"user:{u}") or node_customer.get(f"anon:{a}")
        for u, a in zip(events["user_id"], events["anonymous_id"])
    ]
    emails = landing_csv(world, "email").drop_duplicates(["message_id", "event", "occurred_at"])
    emails["customer_id"] = [node_customer.get(f"email:{email_match_key(e)}") for e in emails["recipient_email"]]
    emails["occurred_at"] = utc(emails["occurred_at"])
    orders = landing_csv(world, "orders").drop_duplicates("order_id", keep="last")
    orders["customer_id"] = [node_customer.get(f"order:{o}") for o in orders["order_id"]]
    orders["occurred_at"] = utc(orders["created_at"])
    fx = pd.read_csv(world.settings.truth_dir / "fx_rates.csv").set_index("currency")["usd_per_unit"]
    orders["amount_usd"] = orders["amount"].astype(float) * orders["currency"].str.upper().map(fx)

    as_of = max(events["occurred_at"].max(), emails["occurred_at"].max(), orders["occurred_at"].max())
    assert (features["as_of_at"] == as_of).all()

    def window(frame: pd.DataFrame, days: int) -> pd.DataFrame:
        return frame[frame["occurred_at"] > as_of - pd.Timedelta(days=days)]

    active = sorted(set(events["customer_id"].dropna()) & set(emails["customer_id"].dropna()))
    buyers = sorted(set(orders["customer_id"].dropna()))
    sample = active[:: max(1, len(active) // 25)] + buyers[:: max(1, len(buyers) // 10)]
    assert len(sample) >= 10
    for customer in sample:
        row = features.loc[customer]
        own_events, own_emails = events[events["customer_id"] == customer], emails[emails["customer_id"] == customer]
        for days in (7, 30, 90):
            assert row[f"events_{days}d"] == len(window(own_events, days)), (customer, days)
            for kind, column in (("opened", "email_opens"), ("clicked", "email_clicks")):
                expected = (window(own_emails, days)["event"] == kind).sum()
                assert row[f"{column}_{days}d"] == expected, (customer, column, days)
        completed = orders[(orders["customer_id"] == customer) & (orders["status"].str.lower() == "completed")]
        assert row["order_count"] == len(completed), customer
        assert row["revenue_usd"] == pytest.approx(completed["amount_usd"].sum(), abs=0.01), customer
        if len(completed):
            last = completed["occurred_at"].max()
            assert row["days_since_last_order"] == (as_of.normalize() - last.normalize()).days, customer


def test_firmographic_features_recover_the_observable_truth(world, warehouse, customer_person, people):
    features = warehouse["features"].set_index("customer_id")
    known = features.join(customer_person.rename("person"), how="inner")
    truth = people.loc[known["person"]].set_index(known.index)
    for column in ("region", "industry", "persona", "seniority"):
        has = known[column].notna() & (known[column] != "unknown")
        share = (known.loc[has, column] == truth.loc[has, column]).mean()
        assert has.sum() >= 20 and share >= 0.9, (column, has.sum(), share)
    # company size: contacts at the account grow with the true size band
    sized = known.dropna(subset=["account_contact_count"]).join(truth["size_band"])
    by_band = sized.groupby("size_band")["account_contact_count"].mean()
    assert by_band.get("1-10", 0) < by_band.get("201-500", by_band.get("1000+", 0))
    # buying groups count each engaged contact in exactly one persona column
    groups = warehouse["buying_groups"]
    persona_columns = [
        c
        for c in groups.columns
        if c.startswith("engaged_")
        and c.endswith("_count")
        and c not in ("engaged_contact_count", "engaged_persona_count")
    ]
    assert (groups[persona_columns].sum(axis=1) == groups["engaged_contact_count"]).all()


def test_note_attributes_match_the_notes_truth_and_flow_into_dim_customers(world, warehouse):
    """customer_note_attributes reads the world's notes as the simulator states them (F1 per attribute), attaches
    them to customers, keeps one current value per customer and attribute, and dim_customers shows it."""
    from mos_pipelines.notes import ATTRIBUTES, Attribute, score

    with world.connect() as con:
        rows = con.execute("select * from marts.customer_note_attributes").df()
    truth = pd.read_csv(world.settings.truth_dir / "notes_facts.csv", dtype=str).astype(object)
    assert len(truth) >= 5 and rows["note_id"].nunique() == len(truth)
    predicted: dict[str, list[Attribute]] = {}
    for r in rows.itertuples():
        value = r.value
        if r.attribute == "decision_timeline":
            value = {
                k: pd.Timestamp(d).date().isoformat()
                for k, d in (("start", r.value_start_date), ("end", r.value_end_date))
            }
        predicted.setdefault(r.note_id, []).append(
            Attribute(r.attribute, value, r.span_start, r.span_end, r.confidence, r.is_negated)
        )
    scores = score(truth.where(truth.notna(), None).to_dict("records"), predicted)
    assert all(scores[a].f1 >= 0.9 for a in ATTRIBUTES), {a: round(s.f1, 3) for a, s in scores.items()}
    assert rows["customer_id"].notna().mean() >= 0.95, rows["subject_matched_by"].value_counts(dropna=False)
    single = rows[~rows["attribute"].isin(["product_interest", "competitor"]) & rows["is_current"]]
    assert not single.duplicated(["customer_id", "attribute"]).any()
    sentiment = single[single["attribute"] == "sentiment"].set_index("customer_id")["value"]
    shown = warehouse["customers"].set_index("customer_id")["note_sentiment"].dropna()
    assert len(shown) > 0 and shown.sort_index().equals(sentiment.sort_index().rename("note_sentiment"))
    assert (warehouse["features"]["note_count"] >= 0).all()


def test_relationship_graph_against_the_people_truth(world, customer_person, people):
    """customer_relationships: typed edges with weights in [0, 1] and evidence; colleagues share a true account."""
    with world.connect() as con:
        edges = con.execute("select * from marts.customer_relationships").df()
    assert (
        edges["edge_id"].is_unique and edges["weight"].between(0, 1).all() and edges["evidence"].str.len().gt(0).all()
    )
    assert {"works_at", "colleague", "reports_to", "manages"} <= set(edges["relationship"])
    account = customer_person.map(people["account_id"])
    col = edges[edges["relationship"] == "colleague"]
    scored = col[col["source_id"].isin(account.index) & col["target_id"].isin(account.index)]
    precision = (scored["source_id"].map(account) == scored["target_id"].map(account)).mean()
    assert len(scored) > 10 and precision >= 0.9, precision
