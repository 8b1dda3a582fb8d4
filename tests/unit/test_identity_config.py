"""config/identity.yaml: the loader's errors, the settings derived from the columns a CRM fills, the date
levels, the model table and `mos identity explain` on a small warehouse."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from mos_pipelines.configuration import DOMAINS, ConfigError, load_identity, provenance
from mos_pipelines.configuration.identity import INPUT_COLUMNS
from mos_pipelines.identity import comparisons as cmp
from mos_pipelines.identity.crm_matching import match_crm_contacts
from mos_pipelines.identity.explain import ExplainError, explain, to_text
from mos_pipelines.identity.model_card import (
    MODEL_TABLE,
    card,
    fitted_model,
    markdown,
    model_table,
    settings_from_json,
)
from mos_pipelines.identity.population import cluster_settings, resolve

CONFIG_FILE = DOMAINS["identity"].file
NO_BLOCKED = pd.DataFrame({"identifier_type": pd.Series(dtype=str), "value": pd.Series(dtype=str)})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "identity.yaml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def bundled_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled config/identity.yaml, whatever MOS_IDENTITY_CONFIG the environment names."""
    monkeypatch.delenv(DOMAINS["identity"].env, raising=False)


def load_config(path: Path | None = None):
    return load_identity(path)


# An override file: merged over config/identity.yaml (its lists replace the bundled ones).
MINIMAL = """
comparisons:
  - name: name
    column: last_name_norm
    levels: [exact]
blocking_rules:
  - [last_name_norm]
"""


# ------------------------------------------------------------------------------------------------ loader


def test_the_shipped_config_loads_and_names_only_known_columns():
    config = load_config(CONFIG_FILE)
    assert {c.name for c in config.comparisons} >= {"name", "birth_date", "workplace", "job_title"}
    assert config.files == (CONFIG_FILE,)


def test_an_override_file_is_merged_over_the_bundled_one_and_shown_by_provenance(tmp_path, monkeypatch):
    """Lists (comparisons, rules) replace; mappings (clustering, derived columns) merge key by key."""
    path = write(
        tmp_path,
        MINIMAL + "clustering: {link_threshold: 0.9}\nderived_columns:\n  last4: substr(last_name_norm, 1, 4)\n",
    )
    monkeypatch.setenv("MOS_IDENTITY_CONFIG", str(path))
    bundled, config = load_config(CONFIG_FILE), load_config()
    assert config.files == (CONFIG_FILE, path)
    assert [c.name for c in config.comparisons] == ["name"] and config.blocking_rules == (("last_name_norm",),)
    assert config.training_rules == bundled.training_rules
    assert config.clustering.link_threshold == 0.9
    assert config.clustering.merge_weight == bundled.clustering.merge_weight
    assert set(config.derived_columns) == set(bundled.derived_columns) | {"last4"}
    sources = {key: source for key, _, source in provenance("identity")}
    assert sources["clustering.link_threshold"].startswith("$MOS_IDENTITY_CONFIG")
    assert sources["clustering.merge_weight"].startswith("config/identity.yaml:")


@pytest.mark.parametrize(
    ("text", "key", "line", "expected", "got"),
    [
        (
            MINIMAL.replace("levels: [exact]", "levels: [exact, {jarowinkler: {at_least: 0.9}}]"),
            "comparisons[0].levels[1]",
            5,
            "a level kind: one of exact, jaro_winkler",
            "'jarowinkler'",
        ),
        (
            MINIMAL.replace("levels: [exact]", "levels: [{jaro_winkler: {at_least: 1.5}}]"),
            "comparisons[0].levels[0].at_least",
            5,
            "a number <= 1",
            "1.5",
        ),
        (
            MINIMAL.replace("levels: [exact]", "levels: [{jaro_winkler: {}}]"),
            "comparisons[0].levels[0]",
            5,
            "a jaro_winkler level with `at_least`",
            "{'jaro_winkler': {}}",
        ),
        (MINIMAL + "max_block_size: one\n", "max_block_size", 8, "a whole number", "'one'"),
        (
            MINIMAL + "blocking_ruels: []\n",
            "blocking_ruels",
            8,
            "one of the keys min_populated_share",
            "the unknown key",
        ),
        (
            MINIMAL.replace(
                "levels: [exact]", "levels: [{exact: {term_frequency: true}}, {year: {term_frequency: true}}]"
            ),
            "comparisons[0].levels[1]",
            5,
            "term_frequency on exact levels",
            "{'year'",
        ),
        (
            MINIMAL.replace("levels: [exact]", "levels: [{exact: {term_frequency_min_records: 5}}]"),
            "comparisons[0].levels[0]",
            5,
            "term_frequency_min_records with term_frequency only",
            "{'exact'",
        ),
        (
            MINIMAL.replace("- [last_name_norm]", "- {keys: [last_name_norm], max_block_size: 1}"),
            "blocking_rules[0].max_block_size",
            7,
            "a number >= 2",
            "1",
        ),
        (
            MINIMAL.replace("- [last_name_norm]", "- {keys: [birth_dat], max_block_size: 5}"),
            "blocking_rules[0].keys[0]",
            7,
            "an input column (first_name_norm, ",
            "'birth_dat'",
        ),
        (
            MINIMAL.replace("- [last_name_norm]", "- {keys: [last_name_norm], unless_both_have: [emial_match_key]}"),
            "blocking_rules[0].unless_both_have[0]",
            7,
            "an input column (first_name_norm, ",
            "'emial_match_key'",
        ),
        (
            MINIMAL.replace("- [last_name_norm]", "- {keys: [last_name_norm], unless_both_have: [last_name_norm]}"),
            "blocking_rules[0].unless_both_have[0]",
            7,
            "a column the rule does not block on",
            "'last_name_norm'",
        ),
        (
            MINIMAL.replace("- [last_name_norm]", "- {keys: [last_name_norm], max_block_size: 9, in_blocks_over: 5}"),
            "blocking_rules[0].in_blocks_over",
            7,
            "`in_blocks_over` with `unless_both_have` only",
            "5",
        ),
        (
            MINIMAL.replace("- [last_name_norm]", "- [last_name_norm, job_titel]"),
            "blocking_rules[0][1]",
            7,
            "an input column (first_name_norm, ",
            "'job_titel'",
        ),
        (
            MINIMAL.replace("column: last_name_norm", "column: surname"),
            "comparisons[0].levels[0]",
            5,
            "or a derived column",
            "'surname'",
        ),
    ],
)
def test_an_invalid_config_names_the_file_the_key_its_line_and_what_was_wrong(tmp_path, text, key, line, expected, got):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert (error.file, error.key, error.line) == (str(path), key, line), str(error)
    assert expected in error.expected and str(error).split("; got ", 1)[1].startswith(got), str(error)


def test_invalid_yaml_names_the_line(tmp_path):
    with pytest.raises(
        ConfigError, match=r"identity\.yaml: \(top level\) \(line 4\): expected valid YAML; got .* at line 4, column 9"
    ):
        load_config(write(tmp_path, "comparisons:\n  - name: x\n    levels: [exact: {\n  oops: ]\n"))


def test_a_derived_column_duckdb_cannot_compute_names_its_key_and_line(tmp_path):
    path = write(tmp_path, "derived_columns:\n  initials: substr(first_name_norm, 1, 1) ||| 'x'\n")
    records = pd.DataFrame({"contact_record_key": ["generic:1", "generic:2"], "first_name_norm": ["ann", "ann"]})
    with pytest.raises(ConfigError) as info:
        match_crm_contacts(records, NO_BLOCKED, config=load_config(path))
    assert (info.value.file, info.value.key, info.value.line) == (str(path), "derived_columns.initials", 2)
    assert info.value.expected == "a SQL expression over one record's columns"


# ------------------------------------------------------------------------- settings from populated columns


def test_the_default_keeps_only_what_the_records_fill():
    config = load_config(CONFIG_FILE)
    shares = {c: 0.0 for c in INPUT_COLUMNS} | {
        "first_name_norm": 0.99,
        "last_name_norm": 0.9,
        "birth_date": 0.8,
        "birth_date_text": 0.78,
        "birth_year": 0.78,
        "city_norm": 0.7,
        "job_title_norm": 0.05,
        "first_and_last_name": 0.9,
        "sorted_names": 0.99,
        "first_name_prefix": 0.99,
    }
    resolved = resolve(config, shares)
    names = [c.name for c in resolved.settings.comparisons]
    assert names == ["name", "birth_date", "workplace"]  # no email, phone or company; job title below 10 %
    workplace = resolved.settings.comparisons[2]
    assert [lvl.label for lvl in workplace.levels] == ["city", "city similar"]
    keys = {k for rule in resolved.settings.blocking_rules for k in rule}
    assert keys <= {"first_name_norm", "last_name_norm", "sorted_names", "birth_date_text", "city_norm", "birth_year"}
    assert ("birth_date_text",) in resolved.settings.blocking_rules
    # a birth date alone has its own, smaller cap; the other rules the file's max_block_size
    from mos_pipelines.identity.matching import block_size_cap

    assert block_size_cap(resolved.settings, ("birth_date_text",)) == 15
    assert block_size_cap(resolved.settings, ("last_name_norm", "birth_year")) == config.max_block_size == 30
    assert any("job_title_norm 5%" in d for d in resolved.dropped)
    assert any(d.startswith("blocking rule [email_match_key]") for d in resolved.dropped)
    assert resolved.skip_reason is None


def test_a_weak_rule_without_populated_identifiers_pairs_every_block_and_the_card_says_how_it_blocks():
    config = load_config(CONFIG_FILE)
    shares = {c: 0.9 for c in INPUT_COLUMNS} | {"phone_e164": 0.02}
    shares |= {c: 0.9 for c in config.derived_columns}
    settings = resolve(config, shares).settings
    conditions = dict(settings.rule_unless_both_have)
    # the phone, filled on 2 % of records, is no identifier to leave pairs to: only the email remains
    assert conditions[("last_name_norm", "city_norm")] == (("email_match_key",), 5)
    assert ("email_match_key",) not in conditions  # the strong rules pair every block
    no_identifiers = resolve(config, shares | {"email_match_key": 0.0, "phone_e164": 0.0})
    assert not no_identifiers.settings.rule_unless_both_have  # sparse data: the name + place rules pair all
    assert any("unless_both_have: email_match_key 0%, phone_e164 0% filled" in d for d in no_identifiers.dropped)


def test_nothing_left_to_compare_is_a_reason_not_an_error():
    resolved = resolve(load_config(CONFIG_FILE), {c: 0.0 for c in INPUT_COLUMNS})
    assert resolved.skip_reason == "no comparison has a populated column"
    records = pd.DataFrame({"contact_record_key": ["generic:1", "generic:2"], "first_name_norm": [None, None]})
    matched, run = match_crm_contacts(records, NO_BLOCKED)
    assert run.skip_reason == "no comparison has a populated column"
    assert matched["match_cluster_key"].tolist() == ["generic:1", "generic:2"]
    assert model_table(run)["skip_reason"].tolist() == ["no comparison has a populated column"]


def test_an_identifier_value_held_by_a_handful_of_records_is_weighed_at_its_level_average():
    """term_frequency_min_records: the shipped birth date level counts a value's frequency only from 10 records
    (a person's duplicates share their birth date); names keep their frequency at any count."""
    from mos_pipelines.identity.matching import add_term_frequencies, register_records

    settings = resolve(
        load_config(CONFIG_FILE), {c: 1.0 for c in INPUT_COLUMNS} | {"birth_date_text": 1.0, "first_and_last_name": 1.0}
    ).settings
    assert dict(settings.tf_min_records) == {"birth_date_text": 10, "email_match_key": 10, "phone_e164": 10}
    dates = ["19800512"] * 3 + ["19000101"] * 12 + ["19751130"]
    con = duckdb.connect()
    register_records(
        con,
        pd.DataFrame(
            {
                "k": range(16),
                "birth_date_text": dates,
                "last_name_norm": ["ng"] * 3 + ["li"] * 13,
                **{
                    c: None
                    for c in (
                        "email_match_key",
                        "phone_e164",
                        "postcode_norm",
                        "city_norm",
                        "first_and_last_name",
                        "first_name_norm",
                        "job_title_norm",
                    )
                },
            }
        ),
        "k",
    )
    add_term_frequencies(con, settings)
    tf = dict(
        con.execute("select birth_date_text, any_value(_tf_birth_date_text) from _mx_records group by 1").fetchall()
    )
    assert tf == {"19800512": None, "19751130": None, "19000101": pytest.approx(12 / 16)}
    names = dict(
        con.execute("select last_name_norm, any_value(_tf_last_name_norm) from _mx_records group by 1").fetchall()
    )
    assert names == {"ng": pytest.approx(3 / 16), "li": pytest.approx(13 / 16)}


# ----------------------------------------------------------------------------------------- date levels


def test_birth_dates_agree_exactly_by_one_typo_transposed_or_on_year_only():
    from mos_pipelines.identity.matching import MatchSettings, compare_pairs, register_records

    comparison = cmp.birth_date("d")
    others = ["19800512", "19800513", "19801205", "19800530", "19801130", "19811130", None]
    con = duckdb.connect()
    register_records(con, pd.DataFrame({"k": range(8), "d": ["19800512", *others]}), "k")
    con.register("pairs", pd.DataFrame({"id_l": [0] * 7, "id_r": range(1, 8)}))
    compare_pairs(con, MatchSettings(comparisons=(comparison,), blocking_rules=()), "pairs", "compared")
    levels = [g for (g,) in con.execute("select g_0 from compared order by id_r").fetchall()]
    labels = {comparison.top - k: lvl.label for k, lvl in enumerate(comparison.levels)} | {0: "else", -1: "null"}
    assert [labels[g] for g in levels] == [
        "exact",
        "dl<=1",
        "day/month swapped",
        "same year and month",
        "same year",
        "else",
        "null",
    ]


# -------------------------------------------------------------------------------- model table and explain


def crm_people(n_people: int = 300, seed: int = 4) -> pd.DataFrame:
    """Contacts with names, birth dates and cities only; some people entered two or three times with typos."""
    rng = np.random.default_rng(seed)
    syllables = ["an", "be", "ca", "do", "el", "fa", "gu", "hi", "io", "ka", "lo", "mi", "no", "pe", "ra", "si"]

    def name(parts: int) -> str:
        return "".join(syllables[i] for i in rng.integers(0, len(syllables), parts))

    rows = []
    for p in range(n_people):
        first, last = name(2), name(3)
        born = f"19{rng.integers(50, 99)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
        city = f"city{rng.integers(30)}"
        for copy in range(int(rng.integers(1, 4))):
            typo = copy and rng.random() < 0.4
            rows.append(
                {
                    "contact_record_key": f"generic:{p}-{copy}",
                    "person": p,
                    "first_name_norm": first[:-1] if typo else first,
                    "last_name_norm": last,
                    "birth_date": born,
                    "city_norm": city,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory) -> Path:
    """A warehouse file holding what `mos identity explain` reads, written by a real matching run."""
    records = crm_people()
    matched, run = match_crm_contacts(records.drop(columns="person"), NO_BLOCKED)
    path = tmp_path_factory.mktemp("explain") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema intermediate; create schema staging")
    con.register("records", records.drop(columns="person"))
    con.register("matched", matched)
    con.register("model", model_table(run))
    con.register("blocked", NO_BLOCKED)
    con.execute("create table intermediate.int_crm_contacts__normalised as select * from records")
    con.execute("create table intermediate.int_crm_contacts__matched as select * from matched")
    con.execute(f"create table intermediate.{MODEL_TABLE} as select * from model")
    con.execute("create table staging.identity_blocked_values as select * from blocked")
    con.close()
    return path


def test_the_model_table_round_trips_the_settings_and_parameters(small_warehouse):
    con = duckdb.connect(str(small_warehouse), read_only=True)
    frame = con.execute(f"select * from intermediate.{MODEL_TABLE}").df()
    settings, model, cluster = fitted_model(frame)
    assert settings_from_json(frame["settings_json"].iloc[0]) == settings
    assert [c.name for c in settings.comparisons] == ["name", "birth_date", "workplace"]
    assert cluster == cluster_settings(load_config(CONFIG_FILE))
    prior = frame[frame["comparison"] == "prior"]["match_weight"].iloc[0]
    assert prior == pytest.approx(math.log2(model.lam / (1 - model.lam)))
    text = markdown(frame)
    assert "| name | exact (term frequency) |" in text and "█" in text
    assert "email" in text.split("Left out")[1]  # left out: the records have no email
    figures = card(frame)
    assert figures["candidate_pairs"] == model.candidate_pairs and figures["comparisons"] == 3


def test_the_model_card_shows_which_rules_leave_records_with_identifiers_to_stronger_rules():
    records = crm_people(120, seed=5)
    records["email_match_key"] = [f"p{p}@example.com" if p % 2 else None for p in records["person"]]
    matched, run = match_crm_contacts(records.drop(columns="person"), NO_BLOCKED)
    frame = model_table(run)
    assert settings_from_json(frame["settings_json"].iloc[0]) == run.resolved.settings  # the options round-trip
    text = markdown(frame)
    blocking = text.split("Blocking rules")[1].split("Left out")[0]
    assert (
        "- last_name_norm, city_norm" not in blocking
        and "- last_name_norm + city_norm (blocks of at most 30 records; in blocks of more than 5 records, only "
        "records that do not both have email_match_key)"
        in blocking
    )
    assert "- email_match_key (blocks of at most 30 records)\n" in blocking
    # no phone in these records: the condition is on the email alone, and the card says why
    assert "unless_both_have: phone_e164 0% filled" in text.split("Left out")[1]
    assert matched["match_cluster_key"].nunique() < len(records)


def test_explain_adds_up_the_weights_of_a_duplicate_pair(small_warehouse):
    con = duckdb.connect(str(small_warehouse), read_only=True)
    result = explain(con, "generic:0-0", "generic:0-1")
    total = result.prior_weight + sum(s.weight + s.tf_adjustment for s in result.steps)
    assert total == pytest.approx(result.total_weight, abs=1e-6)
    assert result.probability == pytest.approx(1 / (1 + 2**-result.total_weight))
    by_name = {s.comparison: s for s in result.steps}
    assert by_name["birth_date"].label == "exact" and by_name["workplace"].label == "city"
    assert result.probability > 0.9 and result.same_cluster
    assert any(rule.startswith("last_name_norm + birth_date_text") for rule in result.candidate_rules)
    text = to_text(result)
    assert "probability" in text and "Ended in the same match cluster" in text


def test_explain_says_why_two_people_were_never_compared(small_warehouse):
    records = crm_people()
    a, b = records[records["person"] == 1].iloc[0], records[records["person"] == 2].iloc[0]
    con = duckdb.connect(str(small_warehouse), read_only=True)
    result = explain(con, a["contact_record_key"], b["contact_record_key"])
    assert not result.candidate_rules and not result.same_cluster
    assert result.probability < 0.5
    assert "Never a candidate pair" in to_text(result)
    assert any(note.endswith("keys differ") for note in result.rule_notes)


def test_explain_names_an_unknown_record(small_warehouse):
    con = duckdb.connect(str(small_warehouse), read_only=True)
    with pytest.raises(ExplainError, match="no CRM contact record 'hubspot:9'"):
        explain(con, "generic:0-0", "hubspot:9")


def test_names_only_records_are_matched_though_every_training_rule_fixes_the_name():
    """With first and last name the only filled columns, each training rule reads the one comparison; the
    run still scores, clusters and returns one row per record."""
    people = crm_people(60)[["contact_record_key", "first_name_norm", "last_name_norm"]]
    matched, run = match_crm_contacts(people, NO_BLOCKED)
    assert [c.name for c in run.resolved.settings.comparisons] == ["name"]
    assert all(s["iterations"] == 0 for s in run.model.sessions if s["held_out"] == ["name"])
    assert len(matched) == len(people) and matched["contact_record_key"].is_unique
    assert "Not estimated by EM" in markdown(model_table(run))  # and the model card says so


def test_a_caller_can_set_where_the_matcher_runs_its_sql_for_a_block():
    """`matching_connections` (what a Spark build sets around the dbt Python models, with Spark SQL connections):
    inside the block the matcher opens its connection with the factory, and closes it; outside it, a DuckDB of its
    own again; the clusters do not depend on which connection ran the SQL."""
    from mos_pipelines.identity.crm_matching import matching_connections

    records = crm_people(n_people=60).drop(columns="person")
    opened: list[duckdb.DuckDBPyConnection] = []

    def factory() -> duckdb.DuckDBPyConnection:
        opened.append(duckdb.connect())
        return opened[-1]

    with matching_connections(factory):
        inside, _ = match_crm_contacts(records, NO_BLOCKED)
    outside, _ = match_crm_contacts(records, NO_BLOCKED)

    assert len(opened) == 1
    with pytest.raises(duckdb.ConnectionException):
        opened[0].execute("select 1")  # the matcher closed the connection it opened
    pd.testing.assert_frame_equal(inside, outside)
    assert (inside["cluster_size"] > 1).any()
