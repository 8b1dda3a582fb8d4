"""Probabilistic clusters of CRM contact records (Fellegi–Sunter with EM, non-chaining clustering).

Thin wrapper: the logic lives in mos_pipelines.identity (plain Python, unit-tested); thresholds come
from the model config (vars mos__identity_*_threshold in dbt_project.yml).
"""


def model(dbt, session):
    dbt.config(materialized="table")
    from mos_pipelines.identity.clustering import ClusterSettings
    from mos_pipelines.identity.crm_matching import match_crm_contacts

    records = dbt.ref("int_crm_contacts__normalised").df()
    blocked = dbt.ref("identity_blocked_values").df()
    settings = ClusterSettings(
        link_threshold=float(dbt.config.get("link_threshold")),
        merge_threshold=float(dbt.config.get("merge_threshold")),
        candidate_threshold=float(dbt.config.get("candidate_threshold")),
    )
    matched, _ = match_crm_contacts(records, blocked, settings)
    return matched
