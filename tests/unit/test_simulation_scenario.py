"""Scenario YAML: merged over the default, validated, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mos_pipelines.simulation import ScenarioError, WorldConfig, generate_world, load_scenario
from mos_pipelines.simulation.scenario import DEFAULT_SCENARIO, ChannelConversion, VariantLift, VolumeChange


def _scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_scenario_is_valid_and_plants_effects_and_null_slices() -> None:
    scenario = load_scenario(None)
    assert scenario.path == DEFAULT_SCENARIO
    assert any(isinstance(e, ChannelConversion) for e in scenario.effects)
    assert any(isinstance(e, VariantLift) for e in scenario.effects)
    assert len(scenario.null_slices) >= 2
    assert abs(sum(scenario.regions.values()) - 1) < 1e-9


def test_a_scenario_file_only_needs_the_keys_it_changes(tmp_path: Path) -> None:
    scenario = load_scenario(_scenario(tmp_path, "name: drop\nvolume: [{from_day: 20, factor: 0.6}]\n"))
    default = load_scenario(None)
    assert scenario.name == "drop"
    assert scenario.volume == (VolumeChange(20, None, 0.6),)
    assert scenario.volume_factor(19) == 1.0 and scenario.volume_factor(25) == 0.6
    assert scenario.email_campaigns == default.email_campaigns and scenario.dirty == default.dirty
    assert scenario.sha256 != default.sha256


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("dirty: {events: {late: 0.1}}\n", "dirty.events.late"),
        ("behaviour: {conversion_rate: high}\n", "behaviour.conversion_rate"),
        ("identity_noise: {typo_rate: 1.5}\n", "identity_noise.typo_rate"),
        ("regions: {NA: 0.5, EU: 0.5, UK: 0.5, APAC: 0.0, LATAM: 0.0}\n", "regions"),
        ("regions: {MARS: 0.0}\n", "regions.MARS"),
        ("volume: [{from_day: 3}]\n", "volume[0].factor"),
        ("volume: [{from_day: 5, to_day: 2, factor: 0.5}]\n", "volume[0].to_day"),
        ("effects: [{type: variant_lift, campaign: nope, variant: B, region: NA, lift: 0.2}]\n", "effects[0].campaign"),
        (
            "effects: [{type: variant_lift, campaign: em_newsletter, variant: Z, region: NA, lift: 0.2}]\n",
            "effects[0].variant",
        ),
        ("effects: [{type: channel_conversion, channel: tv, region: EU, multiplier: 2}]\n", "effects[0].channel"),
        ("effects: [{type: magic}]\n", "effects[0].type"),
        ("null_slices: [{type: channels_equal, channels: [email], region: EU}]\n", "null_slices[0].channels"),
        ("effects: [{type: channel_conversion, channel: paid_search, region: LATAM, multiplier: 2}]\n", "effects[0]"),
        ("email: {click_rate: {NA: 0.5, EU: 0.04, UK: 0.035, APAC: 0.03, LATAM: 0.03}}\n", "email.click_rate.NA"),
        (
            "email_campaigns: [{id: x, name: X, first_day: 0, every_days: 0, audience_share: 0.5, holdout_share: 0.1, "
            "cost_per_send: 0.001, variants: {A: {name: a}}}]\n",
            "email_campaigns[0].every_days",
        ),
        (
            "email_campaigns: [{id: x, name: X, first_day: 0, every_days: 7, audience_share: 0.5, holdout_share: 0.1, "
            "cost_per_send: 0.001, variants: {holdout: {name: a}}}]\n",
            "email_campaigns[0].variants.holdout",
        ),
        ("propensity: {coefficients: {persona: {astronaut: 1.0}}}\n", "propensity.coefficients.persona.astronaut"),
        ("propensity: {coefficients: {shoe_size: {}}}\n", "propensity.coefficients.shoe_size"),
        ("propensity: {noise_sd: -1}\n", "propensity.noise_sd"),
        ("crm: {reexports: [{day: 3, shuffle: [email]}]}\n", "crm.reexports[0].shuffle[0]"),
        ("crm: {reexports: [{day: 3, shuffle: [job_title], systems: [webinar]}]}\n", "crm.reexports[0].systems[0]"),
        ("crm: {reexports: [{day: -1, shuffle: [job_title]}]}\n", "crm.reexports[0].day"),
    ],
)
def test_invalid_values_are_reported_with_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = _scenario(tmp_path, text)
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert error.value.key == key and error.value.file == str(path)
    assert str(error.value).startswith(f"{path}: {key}")


def test_yaml_syntax_errors_name_the_file_and_the_line(tmp_path: Path) -> None:
    path = _scenario(tmp_path, "name: broken\nregions: {NA: 0.4,\n  EU: [\n")
    with pytest.raises(ScenarioError, match=r"expected valid YAML; got .* at line \d+") as error:
        load_scenario(path)
    assert str(path) in str(error.value)


def test_a_missing_scenario_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="expected a readable YAML file; got No such file"):
        load_scenario(tmp_path / "absent.yaml")


def test_generation_stops_before_writing_anything_on_a_bad_scenario(tmp_path: Path) -> None:
    path = _scenario(tmp_path, "behaviour: {signup_share: -1}\n")
    with pytest.raises(ScenarioError, match="behaviour.signup_share"):
        generate_world(WorldConfig(people=10, days=1, scenario=path), tmp_path / "home")
    assert not (tmp_path / "home").exists()


def test_world_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="people"):
        WorldConfig(people=0)
    with pytest.raises(ValueError, match="seed"):
        WorldConfig(seed=-1)


def test_propensity_coefficients_are_a_scenario_knob_merged_over_the_default(tmp_path: Path) -> None:
    default = load_scenario(None).propensity
    scenario = load_scenario(_scenario(tmp_path, "propensity: {coefficients: {persona: {marketer: 2.5}}}\n")).propensity
    assert scenario.coefficients["persona"]["marketer"] == 2.5
    assert scenario.coefficients["persona"]["engineer"] == default.coefficients["persona"]["engineer"]
    assert scenario.coefficients["industry"] == default.coefficients["industry"]
    assert (scenario.intercept, scenario.noise_sd) == (default.intercept, default.noise_sd)


def test_a_planted_crm_reexport_shuffles_titles_on_its_day_only(tmp_path: Path) -> None:
    import csv
    import hashlib

    path = _scenario(tmp_path, "crm: {reexports: [{day: 2, shuffle: [job_title], systems: [hubspot]}]}\n")
    drifted, clean = tmp_path / "drifted", tmp_path / "clean"
    generate_world(WorldConfig(seed=3, people=300, days=3, scenario=path), drifted)
    generate_world(WorldConfig(seed=3, people=300, days=3), clean)

    def digests(home: Path) -> dict[str, str]:
        root = home / "landing"
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*")
            if p.is_file()
        }

    a, b = digests(drifted), digests(clean)
    changed = sorted(k for k in a if a[k] != b.get(k))
    assert changed == ["crm_contacts/hubspot/contacts_2026-01-03.csv"]  # day 2, HubSpot only

    def rows(home: Path) -> list[dict[str, str]]:
        files = sorted((home / "landing" / "crm_contacts" / "hubspot").glob("*.csv"))
        return [r for f in files for r in csv.DictReader(f.open(encoding="utf-8"))]

    before = {r["Record ID"]: r for r in rows(clean)}  # latest clean version of every record
    reexport = list(csv.DictReader((drifted / "landing" / changed[0]).open(encoding="utf-8")))
    assert {r["Record ID"] for r in reexport} == set(before)  # a full export: every record held
    assert all(r["Last Modified Date"].startswith("2026-01-03") for r in reexport)
    titles = [r["Job Title"] for r in reexport]
    assert sorted(titles) == sorted(before[r["Record ID"]]["Job Title"] for r in reexport)  # same titles ...
    moved = sum(r["Job Title"] != before[r["Record ID"]]["Job Title"] for r in reexport)
    assert moved > 0.5 * len(reexport)  # ... on other contacts
    assert all(r["Email"] == before[r["Record ID"]]["Email"] for r in reexport)  # nothing else moved


def test_the_sparse_crm_scenario_writes_one_generic_export_with_names_dates_cities_and_titles_only(
    tmp_path: Path,
) -> None:
    import pandas as pd

    sparse = Path(DEFAULT_SCENARIO).with_name("sparse_crm.yaml")
    generate_world(WorldConfig(seed=3, people=300, days=3, scenario=sparse), tmp_path)
    crm = tmp_path / "landing" / "crm_contacts"
    assert sorted(p.name for p in crm.iterdir()) == ["generic"]  # the simulated systems hold nobody
    files = sorted((crm / "generic").glob("*.csv"))
    rows = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False, on_bad_lines="skip") for f in files])
    rows = rows[rows["source_record_id"].str.startswith("g")]  # without the rows the dirty-data injection broke
    assert {c for c in ("email", "phone", "company", "postcode", "country") if (rows[c] != "").any()} == set()
    for column in ("first_name", "last_name", "birth_date", "city", "job_title"):
        filled = (rows[column] != "").mean()
        assert 0.7 < filled < 1.0, column  # some missing, as configured
    truth = pd.read_csv(tmp_path / "truth" / "identity_truth.csv", dtype=str)
    generic = truth[truth["source"] == "generic"]
    assert set(rows["source_record_id"]) <= set(generic["source_record_id"])
    per_person = generic.groupby("true_entity_id").size()
    assert (per_person >= 3).sum() >= 10 and per_person.mean() > 1.3  # 1 + Poisson(1) each, half exported by day 3
    people = pd.read_csv(tmp_path / "truth" / "people.csv", dtype=str).set_index("person_id")["birth_date"]
    true_date = rows["source_record_id"].map(generic.set_index("source_record_id")["true_entity_id"]).map(people)
    wrong = ((rows["birth_date"] != true_date) & (rows["birth_date"] != "")).mean()
    assert 0.02 < wrong < 0.2  # birth_date_error_rate 0.08: mistyped, day/month swapped or the year off by one
