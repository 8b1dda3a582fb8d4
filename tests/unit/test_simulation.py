"""The simulated world: determinism, day extension, exact manifests, identity traps, planted effects."""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import math
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import phonenumbers
import pytest

from mos_pipelines.ingestion.contracts import CRM_SYSTEMS, SOURCES
from mos_pipelines.simulation import WorldConfig, generate_world
from mos_pipelines.simulation.geography import COUNTRIES

SMALL = WorldConfig(seed=11, people=300, days=5)
JUNK_EMAILS = {"test@test.com", "none@none.com"}
JUNK_PHONES = {"0000000000", "+1 555 555 5555"}
# UTM source/medium -> channel, as the dbt channel-mapping seed should have it.
UTM_CHANNELS = {
    ("newsletter", "email"): "email",
    ("google", "cpc"): "paid_search",
    ("facebook", "paid_social"): "paid_social",
    ("linkedin", "paid_social"): "linkedin",
    ("display_network", "display"): "display",
    ("zoom", "webinar"): "webinar",
}
REGION_OF_LOCALE = {c.locale: c.region for c in COUNTRIES}


def _write_scenario(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("small")
    generate_world(SMALL, home)
    return home


@pytest.fixture(scope="module")
def dirty_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A world with high dirty-data rates, so every kind of dirty record occurs."""
    home = tmp_path_factory.mktemp("dirty")
    scenario = _write_scenario(
        home / "dirty.yaml",
        """
name: dirty
dirty:
  events: {malformed_rate: 0.05, missing_id_rate: 0.03, duplicate_rate: 0.05, late_rate: 0.05}
  orders: {malformed_rate: 0.3, missing_id_rate: 0.2, duplicate_rate: 0.3}
  email: {malformed_rate: 0.05, missing_id_rate: 0.03, duplicate_rate: 0.05}
  crm_contacts: {malformed_rate: 0.1, missing_id_rate: 0.05}
  consent: {malformed_rate: 0.03, missing_id_rate: 0.02}
  ad_spend: {malformed_rate: 0.2, missing_id_rate: 0.1}
  crm_notes: {malformed_rate: 0.6, missing_id_rate: 0.4}
""",
    )
    generate_world(WorldConfig(seed=3, people=600, days=8, scenario=scenario), home)
    return home


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- determinism --------------------------------------------------------------------------------


def test_same_config_gives_byte_identical_landing_and_truth_files(small_world: Path, tmp_path: Path) -> None:
    generate_world(SMALL, tmp_path)
    first = _digests(small_world / "landing") | {f"truth/{k}": v for k, v in _digests(small_world / "truth").items()}
    second = _digests(tmp_path / "landing") | {f"truth/{k}": v for k, v in _digests(tmp_path / "truth").items()}
    assert first == second
    assert any(k.endswith(".parquet") for k in first)


def test_files_do_not_depend_on_the_python_hash_seed(small_world: Path, tmp_path: Path) -> None:
    """String hashing is salted per process; a run in a fresh process must still give the same bytes."""
    code = (
        "import sys; from pathlib import Path; "
        "from mos_pipelines.simulation import WorldConfig, generate_world; "
        f"generate_world(WorldConfig(seed={SMALL.seed}, people={SMALL.people}, days={SMALL.days}), Path(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env)
    assert _digests(tmp_path / "landing") == _digests(small_world / "landing")
    assert _digests(tmp_path / "truth") == _digests(small_world / "truth")


def test_another_seed_gives_other_files(small_world: Path, tmp_path: Path) -> None:
    generate_world(WorldConfig(seed=SMALL.seed + 1, people=SMALL.people, days=SMALL.days), tmp_path)
    assert (
        _digests(small_world / "landing")["events/2026-01-01.jsonl"]
        != _digests(tmp_path / "landing")["events/2026-01-01.jsonl"]
    )


def test_one_more_day_keeps_every_earlier_file_and_adds_only_that_day(small_world: Path, tmp_path: Path) -> None:
    longer = WorldConfig(seed=SMALL.seed, people=SMALL.people, days=SMALL.days + 1)
    summary = generate_world(longer, tmp_path)
    short, long = _digests(small_world / "landing"), _digests(tmp_path / "landing")
    assert {k: long[k] for k in short} == short
    new_day = (SMALL.start_date + datetime.timedelta(days=SMALL.days)).isoformat()
    added = set(long) - set(short)
    assert added and all(new_day in path for path in added)
    assert len(added) == len(summary.files) - len(short)
    for name in ("people.csv", "accounts.csv", "propensity_model.json"):  # the population ignores `days`
        assert (small_world / "truth" / name).read_bytes() == (tmp_path / "truth" / name).read_bytes()


def test_existing_landing_files_are_overwritten_by_name_and_others_kept(tmp_path: Path) -> None:
    stray = tmp_path / "landing" / "events" / "mine.jsonl"
    stray.parent.mkdir(parents=True)
    stray.write_text('{"messageId": "x"}\n')
    same_name = tmp_path / "landing" / "campaigns" / "campaigns.csv"
    same_name.parent.mkdir(parents=True)
    same_name.write_text("old\n")
    generate_world(WorldConfig(seed=1, people=60, days=2), tmp_path)
    assert stray.read_text() == '{"messageId": "x"}\n'
    assert same_name.read_text().startswith("campaign_id,")
    assert not (tmp_path / ".simulation-scratch").exists()


# -- manifest: recounted independently against the contract -------------------------------------


def _parses(value: str, kind: str, fmt: str | None) -> bool:
    text = value.strip()
    try:
        if kind == "timestamp":
            if fmt:
                datetime.datetime.strptime(text, fmt)
            else:
                datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        elif kind == "date":
            datetime.date.fromisoformat(text)
        elif kind == "double":
            float(text)
        elif kind == "bigint":
            int(text)
        elif kind == "boolean":
            return text in ("true", "false")
    except ValueError:
        return False
    return True


def _checks(source: str, subfolder: str | None) -> list[tuple[str, str, bool, tuple[str, ...] | None, str | None]]:
    if source == "crm_contacts":
        system = CRM_SYSTEMS[subfolder or "generic"]
        return [(system.id_column, "varchar", True, None, None)] + [
            (c, "timestamp", False, None, system.timestamp_format) for c in system.timestamp_columns
        ]
    return [(f.name, f.type, f.required, f.allowed, None) for f in SOURCES[source].fields]


def _valid(record: dict[str, object], checks: list, one_of: tuple[str, ...]) -> bool:
    def text(v: object) -> str | None:
        if v is None:
            return None
        return v if isinstance(v, str) else json.dumps(v)

    for name, kind, required, allowed, fmt in checks:
        value = text(record.get(name))
        present = value is not None and value.strip() != ""
        if required and not present:
            return False
        if present and kind not in ("varchar", "json") and not _parses(value, kind, fmt):  # type: ignore[arg-type]
            return False
        if present and allowed and value not in allowed:
            return False
    if one_of and not any((text(record.get(n)) or "").strip() for n in one_of):
        return False
    return True


def _recount(landing: Path, manifest: dict) -> tuple[dict[str, dict[str, int]], dict[str, set[int]]]:
    """Per file: counts found by parsing it; plus the physical lines of invalid records."""
    counts: dict[str, dict[str, int]] = {}
    invalid_lines: dict[str, set[int]] = {}
    seen: dict[str, set[tuple]] = defaultdict(set)
    keys = manifest["duplicate_keys"]
    for entry in sorted(manifest["files"], key=lambda e: e["path"]):
        path, source = entry["path"], entry["source"]
        parts = path.split("/")
        subfolder = parts[1] if SOURCES[source].subfolders else None
        checks = _checks(source, subfolder)
        file_day = path.rsplit("_", 1)[-1].split(".")[0] if "_" in parts[-1] else parts[-1].split(".")[0]
        records: list[tuple[int, dict | None]] = []
        file = landing / path
        if SOURCES[source].format == "jsonl":
            for line_no, line in enumerate(file.read_text(encoding="utf-8").split("\n"), start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    obj = None
                records.append((line_no, obj if isinstance(obj, dict) else None))
        else:
            with file.open(newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                header = next(reader)
                line_no = 2
                for row in reader:
                    records.append((line_no, dict(zip(header, row)) if len(row) == len(header) else None))
                    line_no = reader.line_num + 1
        c = Counter()
        bad: set[int] = set()
        for line_no, record in records:
            c["rows_total"] += 1
            if record is None or not _valid(record, checks, SOURCES[source].one_of):
                c["rows_malformed"] += 1
                bad.add(line_no)
                continue
            c["rows_valid"] += 1
            if source in keys:
                key = tuple(record[k] for k in keys[source])
                if key in seen[source]:
                    c["rows_duplicate"] += 1
                    continue
                seen[source].add(key)
            if source == "events" and record["timestamp"][:10] < file_day:
                c["rows_late"] += 1
        counts[path] = {k: c[k] for k in ("rows_total", "rows_valid", "rows_malformed", "rows_duplicate", "rows_late")}
        invalid_lines[path] = bad
    return counts, invalid_lines


def test_manifest_counts_match_an_independent_recount_of_every_file(dirty_world: Path) -> None:
    manifest = json.loads((dirty_world / "truth" / "manifest.json").read_text())
    recount, invalid_lines = _recount(dirty_world / "landing", manifest)
    stated = {e["path"]: {k: e[k] for k in recount[e["path"]]} for e in manifest["files"]}
    assert stated == recount
    files_on_disk = {
        p.relative_to(dirty_world / "landing").as_posix() for p in (dirty_world / "landing").rglob("*") if p.is_file()
    }
    assert set(stated) == files_on_disk
    # dirty_rows.csv names exactly the quarantined lines
    dirty = pd.read_csv(dirty_world / "truth" / "dirty_rows.csv")
    malformed = dirty[~dirty["kind"].isin(["duplicate", "late"])]
    listed = malformed.groupby("file")["line"].apply(set).to_dict()
    assert {f: lines for f, lines in invalid_lines.items() if lines} == listed
    totals = manifest["totals"]
    assert totals["events"]["rows_late"] > 0 and totals["events"]["rows_duplicate"] > 0
    assert totals["orders"]["rows_duplicate"] > 0 and totals["email"]["rows_duplicate"] > 0
    for source in ("events", "orders", "email", "crm_contacts", "consent", "ad_spend", "crm_notes"):
        assert totals[source]["rows_malformed"] > 0, source
    assert totals["campaigns"]["rows_malformed"] == 0


def test_every_kind_of_dirty_record_is_injected(dirty_world: Path) -> None:
    kinds = set(pd.read_csv(dirty_world / "truth" / "dirty_rows.csv")["kind"])
    assert {
        "bad_json",
        "not_an_object",
        "bad_timestamp",
        "bad_type",
        "missing_message_id",
        "missing_ids",
        "wrong_field_count",
        "bad_value",
        "missing_id",
        "missing_text",
        "missing_note_id",
        "duplicate",
        "late",
    } <= kinds


def test_default_world_has_few_dirty_records(small_world: Path) -> None:
    totals = json.loads((small_world / "truth" / "manifest.json").read_text())["totals"]
    events = totals["events"]
    assert 0 < events["rows_malformed"] < 0.02 * events["rows_total"]


# -- file shapes -------------------------------------------------------------------------------


def test_crm_files_have_exactly_their_system_columns(small_world: Path) -> None:
    for system in ("hubspot", "salesforce", "webinar"):
        files = sorted((small_world / "landing" / "crm_contacts" / system).glob("*.csv"))
        assert files
        for file in files:
            with file.open(newline="", encoding="utf-8") as fh:
                assert tuple(next(csv.reader(fh))) == CRM_SYSTEMS[system].columns


def test_events_have_exactly_the_segment_keys_in_order(small_world: Path) -> None:
    expected = ["messageId", "type", "timestamp", "anonymousId", "userId", "event", "properties", "traits", "context"]
    valid = _valid_events(small_world / "landing")
    assert valid and all(list(p) == expected for p in valid)
    assert all(p["timestamp"].endswith("Z") for p in valid)
    assert all(list(p["context"]) in (["page", "locale", "ip"], ["campaign", "page", "locale", "ip"]) for p in valid)
    assert all(p["context"]["page"]["url"].startswith("https://") and p["context"]["page"]["path"] for p in valid)
    tagged = [p for p in valid if "campaign" in p["context"]]
    assert tagged and all(
        list(p["context"]["campaign"]) == ["source", "medium", "name", "content", "term"] for p in tagged
    )
    assert all(
        p["context"]["campaign"]["name"] and p["context"]["campaign"]["source"] in p["context"]["page"]["url"]
        for p in tagged
    )
    orders = [p for p in valid if p["event"] == "Order Completed"]
    assert all(set(p["properties"]) == {"order_id", "revenue", "currency"} for p in orders)


def test_email_clicks_land_with_the_token_of_the_clicked_send(small_world: Path) -> None:
    """A tracked email link carries mos_eid = md5(message id) of the send, on the clicker's own device."""
    tokens = set()
    for event in _valid_events(small_world / "landing"):
        query = parse_qs(urlsplit(event["context"]["page"]["url"]).query)
        if "mos_eid" in query:
            assert query["utm_medium"] == ["email"], event["context"]["page"]["url"]
            tokens.add((query["mos_eid"][0], event["anonymousId"]))
    sends = pd.read_parquet(small_world / "truth" / "email_sends.parquet")
    clicks = sends[sends["clicked"]]
    device = pd.read_parquet(small_world / "truth" / "sessions.parquet").set_index("session_id")["anonymous_id"]
    expected = {
        (hashlib.md5(m.encode()).hexdigest(), device[s]) for m, s in zip(clicks["message_id"], clicks["session_id"])
    }
    assert len(expected) >= 5
    assert tokens <= expected  # no token on a device that is not the recipient's click device
    assert len(tokens) >= 0.9 * len(expected)  # only dirty-data losses are missing


def test_campaigns_carry_a_region_column_outside_the_contract(small_world: Path) -> None:
    campaigns = pd.read_csv(small_world / "landing" / "campaigns" / "campaigns.csv", keep_default_na=False, dtype=str)
    contract = [f.name for f in SOURCES["campaigns"].fields]
    assert list(campaigns.columns) == contract + ["region"]
    assert set(campaigns["region"]) == {"ALL", "NA", "EU", "UK", "APAC", "LATAM"}
    email = campaigns[campaigns["channel"] == "email"]
    assert (email["is_holdout"] == "true").sum() == email["campaign_id"].nunique()
    assert email.groupby("campaign_id")["variant_id"].count().between(3, 4).all()


def test_phone_numbers_in_truth_are_valid_e164_for_the_country(small_world: Path) -> None:
    people = pd.read_csv(small_world / "truth" / "people.csv", keep_default_na=False, dtype=str)
    for phone, country in zip(people["phone_e164"], people["country"]):
        number = phonenumbers.parse(phone)
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.region_code_for_number(number) == country or number.country_code == 1
    assert people["phone_e164"].is_unique


# -- identity ----------------------------------------------------------------------------------


def _valid_csv_rows(folder: Path) -> list[dict[str, str]]:
    rows = []
    for file in sorted(folder.glob("*.csv")):
        with file.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            rows += [dict(zip(header, r)) for r in reader if len(r) == len(header)]
    return rows


def _valid_events(landing: Path) -> list[dict]:
    events = []
    for file in sorted((landing / "events").glob("*.jsonl")):
        for line in file.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (
                isinstance(event, dict)
                and event.get("messageId")
                and (event.get("anonymousId") or event.get("userId"))
                and event.get("type") in ("page", "track", "identify")
                and event.get("timestamp", "").endswith("Z")
            ):
                events.append(event)
    return events


def test_identity_truth_covers_every_record_and_identifier(small_world: Path) -> None:
    truth = pd.read_csv(small_world / "truth" / "identity_truth.csv", dtype=str)
    known = set(zip(truth["source"], truth["source_record_id"]))
    landing = small_world / "landing"
    for system in ("hubspot", "salesforce", "webinar"):
        id_column = CRM_SYSTEMS[system].id_column
        ids = {r[id_column] for r in _valid_csv_rows(landing / "crm_contacts" / system) if r[id_column]}
        assert ids and {(system, i) for i in ids} <= known
    events = _valid_events(landing)
    assert {("segment_anonymous_id", e["anonymousId"]) for e in events if e["anonymousId"]} <= known
    assert {("segment_user_id", e["userId"]) for e in events if e["userId"]} <= known
    orders = {r["order_id"] for r in _valid_csv_rows(landing / "orders") if r["order_id"]}
    assert orders and {("orders", o) for o in orders} <= known
    assert truth.groupby("source")["source_record_id"].apply(lambda s: s.is_unique).all()


def test_junk_identifiers_are_shared_by_distinct_people(tmp_path: Path) -> None:
    generate_world(WorldConfig(seed=5, people=1500, days=3), tmp_path)
    truth = pd.read_csv(tmp_path / "truth" / "identity_truth.csv", dtype=str)
    person_of = dict(zip(zip(truth["source"], truth["source_record_id"]), truth["true_entity_id"]))
    people_by_value: dict[str, set[str]] = defaultdict(set)
    columns = {
        "hubspot": ("Email", "Phone Number"),
        "salesforce": ("Email", "Phone", "MobilePhone"),
        "webinar": ("email", "phone"),
    }
    for system, fields in columns.items():
        id_column = CRM_SYSTEMS[system].id_column
        for row in _valid_csv_rows(tmp_path / "landing" / "crm_contacts" / system):
            if not row[id_column]:  # a dirty row without its id (quarantined, not in the truth)
                continue
            for f in fields:
                if row[f].strip() in JUNK_EMAILS | JUNK_PHONES:
                    people_by_value[row[f].strip()].add(person_of[(system, row[id_column])])
    assert any(value in JUNK_EMAILS and len(p) >= 2 for value, p in people_by_value.items())
    assert any(value in JUNK_PHONES and len(p) >= 2 for value, p in people_by_value.items())


# -- sessions and effects ----------------------------------------------------------------------


def _landing_sessions(landing: Path) -> pd.DataFrame:
    """Sessions rebuilt from landing events alone: per anonymousId, split on > 30 minutes of inactivity."""
    seen, rows = set(), []
    for e in _valid_events(landing):
        if e["messageId"] in seen or not e["anonymousId"]:
            continue
        seen.add(e["messageId"])
        campaign = e["context"].get("campaign") or {}
        rows.append(
            {
                "anonymous_id": e["anonymousId"],
                "ts": pd.Timestamp(e["timestamp"]),
                "channel_tag": (campaign.get("source", "").lower(), campaign.get("medium", "").lower()),
                "region": REGION_OF_LOCALE[e["context"]["locale"]],
                "order": e["event"] == "Order Completed",
            }
        )
    events = pd.DataFrame(rows).sort_values(["anonymous_id", "ts"])
    gap = events.groupby("anonymous_id")["ts"].diff()
    events["session"] = (gap.isna() | (gap > pd.Timedelta(minutes=30))).cumsum()
    return events.groupby("session").agg(
        anonymous_id=("anonymous_id", "first"),
        start=("ts", "first"),
        n_events=("ts", "size"),
        channel=("channel_tag", lambda t: UTM_CHANNELS.get(t.iloc[0], "other")),
        region=("region", "first"),
        converted=("order", "any"),
    )


def test_sessions_rebuilt_from_events_with_a_30_minute_cutoff_match_the_truth(small_world: Path) -> None:
    rebuilt = _landing_sessions(small_world / "landing")
    truth = pd.read_parquet(small_world / "truth" / "sessions.parquet")
    truth = truth[truth["n_events_landed"] > 0]
    left = sorted(zip(rebuilt["anonymous_id"], rebuilt["n_events"]))
    right = sorted(zip(truth["anonymous_id"], truth["n_events_landed"]))
    assert len(rebuilt) > 100
    assert left == right


def _conversion_rates(home: Path) -> pd.Series:
    """Session conversion rate by region and channel group, from the landing events alone."""
    sessions = _landing_sessions(home / "landing")
    group = sessions["channel"].where(sessions["channel"].isin(["email", "paid_social"]), "other")
    return sessions.groupby([sessions["region"], group])["converted"].mean()


EFFECT_SCENARIO = """
name: {name}
consent:
  initial_grant_rate: {{NA: 0.95, EU: 0.95, UK: 0.9, APAC: 0.9, LATAM: 0.9}}
email:
  click_rate: {{NA: 0.12, EU: 0.12, UK: 0.1, APAC: 0.1, LATAM: 0.1}}
behaviour: {{conversion_rate: 0.05}}
effects:
  - {{type: channel_conversion, channel: email, region: EU, multiplier: {multiplier}}}
"""


def test_planted_email_conversion_effect_in_eu_shows_in_the_landing_data(tmp_path: Path) -> None:
    """Same seed with and without the effect: only EU email sessions convert differently."""
    rates = {}
    for name, multiplier in (("planted", 3.0), ("control", 1.0)):
        home = tmp_path / name
        home.mkdir()
        scenario = _write_scenario(home / "s.yaml", EFFECT_SCENARIO.format(name=name, multiplier=multiplier))
        generate_world(WorldConfig(seed=2, people=2000, days=21, scenario=scenario), home)
        rates[name] = _conversion_rates(home)
    planted, control = rates["planted"], rates["control"]
    assert planted["EU", "email"] > 1.8 * control["EU", "email"]
    assert planted["EU", "email"] > 1.5 * planted["EU", "paid_social"]
    for unaffected in (("NA", "email"), ("EU", "other"), ("EU", "paid_social")):
        assert planted[unaffected] == pytest.approx(control[unaffected], rel=0.15)


def test_volume_drop_from_the_scenario_shows_in_event_counts(tmp_path: Path) -> None:
    scenario = _write_scenario(tmp_path / "drop.yaml", "volume: [{from_day: 4, factor: 0.4}]\n")
    generate_world(WorldConfig(seed=4, people=800, days=8, scenario=scenario), tmp_path)
    per_day = {}
    for entry in json.loads((tmp_path / "truth" / "manifest.json").read_text())["files"]:
        if entry["source"] == "events":
            per_day[entry["path"]] = entry["rows_valid"]
    counts = [per_day[k] for k in sorted(per_day)]
    assert sum(counts[4:]) / 4 < 0.6 * sum(counts[:4]) / 4


def test_summary_reports_files_rows_and_dirty_rows(tmp_path: Path) -> None:
    stages = []
    summary = generate_world(
        WorldConfig(seed=8, people=200, days=3),
        tmp_path,
        progress=lambda stage, done, total: stages.append((stage, done, total)),
    )
    assert summary.files_written == len(summary.files) == sum(summary.files_per_source.values())
    assert summary.rows_per_source["events"] > 0 and summary.rows_per_source["campaigns"] > 0
    assert any(k.startswith("events.") for k in summary.dirty_rows)
    assert ("days", 3, 3) in stages and ("truth", 1, 1) in stages
    assert "manifest.json" in summary.truth_files


@pytest.mark.parametrize("people", [1, 4])
def test_tiny_worlds_are_generated_with_consistent_manifests(tmp_path: Path, people: int) -> None:
    summary = generate_world(WorldConfig(seed=9, people=people, days=3), tmp_path)
    manifest = json.loads((tmp_path / "truth" / "manifest.json").read_text())
    recount, _ = _recount(tmp_path / "landing", manifest)
    assert {e["path"]: {k: e[k] for k in recount[e["path"]]} for e in manifest["files"]} == recount
    assert set(summary.files) == {e["path"] for e in manifest["files"]}
    assert all(e["rows_total"] > 0 for e in manifest["files"])  # no empty exports


EXPECTED_SCENARIO = """
name: expected
behaviour: {sessions_per_person_day: 0.5, conversion_rate: 0.15}
volume: [{from_day: 10, factor: 0.5}]
effects:
  - {type: channel_conversion, channel: paid_search, region: EU, multiplier: 2.0}
"""


def test_expected_daily_metrics_are_what_the_world_draws_on_average(tmp_path: Path) -> None:
    """truth/expected_daily.csv against the world's own draws (truth sessions, orders and spend), channel by
    channel: within a few standard errors of the counts, and exactly the planted volume change."""
    scenario = _write_scenario(tmp_path / "s.yaml", EXPECTED_SCENARIO)
    generate_world(WorldConfig(seed=21, people=1500, days=14, scenario=scenario), tmp_path)
    truth = tmp_path / "truth"
    expected = pd.read_csv(truth / "expected_daily.csv", keep_default_na=False)
    sessions = pd.read_parquet(truth / "sessions.parquet")
    orders = pd.read_parquet(truth / "orders.parquet")
    completed = orders[orders["status"] == "completed"]
    spend = pd.read_parquet(truth / "ad_spend.parquet")
    by_channel = expected.groupby("channel")[["sessions", "conversions", "revenue_usd", "cost_usd"]].sum()
    drawn_sessions = sessions.groupby("channel").size()
    drawn_conversions = completed.groupby("channel").size()
    for channel, row in by_channel.iterrows():
        assert abs(drawn_sessions[channel] - row["sessions"]) < 4 * math.sqrt(row["sessions"]) + 5, channel
        assert abs(drawn_conversions.get(channel, 0) - row["conversions"]) < 4 * math.sqrt(row["conversions"]) + 3
    paid = spend.groupby("channel")["spend_usd"].sum()
    assert (paid / by_channel.loc[paid.index, "cost_usd"]).between(0.9, 1.1).all()
    assert completed["amount_usd"].sum() / by_channel["revenue_usd"].sum() == pytest.approx(1, abs=0.15)
    eu = expected[expected["region"] == "EU"].groupby("channel")[["sessions", "conversions"]].sum()
    rate = eu["conversions"] / eu["sessions"]
    # planted × channel factor, a little less where the order probability reaches its cap (0.9)
    assert 2.3 < rate["paid_search"] / rate["organic"] <= 2 * 1.3
    ordinary = expected[~expected["channel"].isin(["email", "webinar"])]  # sends and sign-ups do not follow traffic
    daily = ordinary.groupby("day")["sessions"].sum()
    weekday = [datetime.date.fromisoformat(d).weekday() for d in expected.groupby("day")["date"].first()]
    for day in range(10, 14):  # the same weekday a week before the drop
        assert weekday[day] == weekday[day - 7]
        assert daily[day] / daily[day - 7] == pytest.approx(0.5, rel=0.01)
