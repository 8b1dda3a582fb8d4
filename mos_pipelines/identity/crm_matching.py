"""Probabilistic matching of normalised CRM contact records (the settings behind ``int_crm_contacts__matched``).

Input columns (from ``int_crm_contacts__normalised``): ``contact_record_key, first_name_norm,
last_name_norm, email_match_key, phone_e164, birth_date, postcode_norm, company_norm``.
Blocked identifier values (test@test.com, 0000000000, …) are removed before matching, so junk can
neither link records nor count as agreement.
"""

from __future__ import annotations

import pandas as pd

from mos_pipelines.identity.clustering import ClusterSettings
from mos_pipelines.identity.comparisons import Comparison, Level, jaro_winkler, levenshtein, names_swapped
from mos_pipelines.identity.matching import MatchSettings
from mos_pipelines.identity.resolve import Resolution, resolve

SORTED_NAMES = (
    "least({t}.first_name_norm, {t}.last_name_norm) || '|' || greatest({t}.first_name_norm, {t}.last_name_norm)"
)
FIRST_NAME_PREFIX = "substr({t}.first_name_norm, 1, 2)"
COMPANY_WORD = "split_part({t}.company_norm, ' ', 1)"  # 'atlasbridge' of 'atlasbridge software'
EMAIL_DOMAIN = "split_part({t}.email_match_key, '@', 2)"

# Names and postcodes are drawn from short lists (75 postcodes at 1M records; the commonest first+last
# name 524 times), so a rule on names alone, or last name + postcode, grows with N²: 308M candidate
# pairs at 1M records. Each broad rule carries a second, discriminating key instead; the sorted-name
# key (first and last in either order) stands in for first + last. See benchmarks/identity/README.md.
NAMES_AND_POSTCODE = (SORTED_NAMES, "postcode_norm")

# Company, postcode and city describe the *account*: colleagues agree on all three. Counted as three
# independent agreements they outweigh a different first name, and EM learns "same account" instead
# of "same person". One comparison for the workplace counts that evidence once.
WORKPLACE = Comparison(
    name="workplace",
    columns=("company_norm", "postcode_norm"),
    levels=(
        Level("company+postcode", "l.company_norm = r.company_norm and l.postcode_norm = r.postcode_norm"),
        Level("company", "jaro_winkler_similarity(l.company_norm, r.company_norm) >= 0.9"),
        Level("postcode", "l.postcode_norm = r.postcode_norm"),
    ),
    null_sql="(l.company_norm is null or r.company_norm is null) and (l.postcode_norm is null or r.postcode_norm is null)",
)

# Same-name colleagues get work addresses like carlos.gomez@ and carlos.gomez2@: one edit apart, yet
# a different number is evidence of a *different* person. Only a one-edit difference with the same
# digits counts as a typo. The digits are computed once per record (``email_digits``, see
# ``match_frame``) and the edit distance only for pairs whose digits and lengths allow a typo: at 1M
# records (10M pairs) this comparison took 140 s with a regular expression per pair and side.
EMAIL = Comparison(
    name="email_match_key",
    columns=("email_match_key",),
    levels=(
        Level("exact", "l.email_match_key = r.email_match_key"),
        Level("typo", "{s} <= 1"),
    ),
    null_sql="l.email_match_key is null or r.email_match_key is null",
    tf_column="email_match_key",
    similarity_sql=(
        "case when l.email_digits is distinct from r.email_digits then 2 "
        "when abs(strlen(l.email_match_key) - strlen(r.email_match_key)) > 1 then 2 "
        "else levenshtein(l.email_match_key, r.email_match_key) end"
    ),
)

CRM_MATCH_SETTINGS = MatchSettings(
    comparisons=(
        jaro_winkler("first_name_norm", (0.92, 0.8), tf=True),
        jaro_winkler("last_name_norm", (0.92, 0.8), tf=True),
        names_swapped("first_name_norm", "last_name_norm"),
        EMAIL,
        levenshtein("phone_e164", (1,), tf=True),
        levenshtein("birth_date_text", (1,)),
        WORKPLACE,
    ),
    blocking_rules=(
        ("email_match_key",),
        ("phone_e164",),
        ("first_name_norm", "company_norm"),
        ("last_name_norm", "company_norm"),
        ("last_name_norm", "postcode_norm", FIRST_NAME_PREFIX),
        NAMES_AND_POSTCODE,
        (SORTED_NAMES, COMPANY_WORD),
        (SORTED_NAMES, EMAIL_DOMAIN),
    ),
    # Blocks on company alone are dominated by colleagues, not duplicates: train on the others. The
    # name session is a blocking rule, so it filters the compared pairs instead of blocking again.
    training_rules=(
        NAMES_AND_POSTCODE,
        ("email_match_key",),
        ("phone_e164",),
    ),
    u_sample_pairs=300_000,
)

MATCH_COLUMNS = (
    "first_name_norm", "last_name_norm", "email_match_key", "phone_e164", "postcode_norm", "company_norm",
)


def drop_blocked_values(records: pd.DataFrame, blocked: pd.DataFrame) -> pd.DataFrame:
    """Null out identifier values listed in the blocked-values seed (columns identifier_type, value)."""
    records = records.copy()
    for identifier_type, column in (("email", "email_match_key"), ("phone", "phone_e164")):
        values = set(blocked.loc[blocked["identifier_type"] == identifier_type, "value"].astype(str))
        records.loc[records[column].isin(values), column] = None
    return records


def match_frame(records: pd.DataFrame, blocked: pd.DataFrame) -> pd.DataFrame:
    """The matcher's input: blocked values nulled, ``MATCH_COLUMNS``, ``birth_date_text`` (YYYYMMDD) and
    ``email_digits`` (the digits of the email match key, for the typo level of ``EMAIL``)."""
    frame = drop_blocked_values(records, blocked)
    return frame[["contact_record_key", *MATCH_COLUMNS]].assign(
        birth_date_text=records["birth_date"].astype("string").str.replace("-", "", regex=False),
        email_digits=frame["email_match_key"].astype("string").str.replace(r"[^0-9]", "", regex=True),
    )


def match_crm_contacts(
    records: pd.DataFrame, blocked: pd.DataFrame, cluster: ClusterSettings
) -> tuple[pd.DataFrame, Resolution | None]:
    """One row per record: ``contact_record_key, match_cluster_key, cluster_size, best_match_probability``,
    and the resolution behind it (None when there are fewer than two records to compare)."""
    frame = match_frame(records, blocked)
    if len(frame) < 2:
        out = pd.DataFrame({"contact_record_key": frame["contact_record_key"], "match_cluster_key": frame["contact_record_key"]})
        return out.assign(cluster_size=1, best_match_probability=None), None
    result = resolve(frame, "contact_record_key", CRM_MATCH_SETTINGS, cluster)
    clusters = result.clusters.rename(columns={"cluster_id": "match_cluster_key"})
    clusters["cluster_size"] = clusters.groupby("match_cluster_key")["contact_record_key"].transform("size")
    links = result.links
    in_cluster = links.merge(clusters, left_on="record_id_l", right_on="contact_record_key").merge(
        clusters, left_on="record_id_r", right_on="contact_record_key", suffixes=("_l", "_r")
    )
    in_cluster = in_cluster[in_cluster["match_cluster_key_l"] == in_cluster["match_cluster_key_r"]]
    best = pd.concat([
        in_cluster[["record_id_l", "match_probability"]].rename(columns={"record_id_l": "contact_record_key"}),
        in_cluster[["record_id_r", "match_probability"]].rename(columns={"record_id_r": "contact_record_key"}),
    ]).groupby("contact_record_key")["match_probability"].max()
    clusters["best_match_probability"] = clusters["contact_record_key"].map(best)
    return clusters, result
