"""Probabilistic clusters of CRM contact records (Fellegi–Sunter with EM, non-chaining clustering).

Thin wrapper: the logic lives in mos_pipelines.identity (plain Python, unit-tested); what is compared,
blocked on and trained on, and the clustering thresholds, are config/identity.yaml (a file MOS_IDENTITY_CONFIG
names is merged over it). The fitted model (m, u and weights per comparison level, the prior, the settings
the run used) is written next to this model as intermediate.int_crm_contacts__match_model, for the
asset's model card and `mos identity explain`, and its card is rendered to
$MOS_HOME/reports/identity_model_card.json (the asset's metadata: Dagster cannot read the warehouse while
dbt holds it).
"""


def model(dbt, session):
    dbt.config(materialized="table")
    import json

    from mos_pipelines.identity.crm_matching import match_crm_contacts
    from mos_pipelines.identity.model_card import CARD_FILE, MODEL_TABLE, card, model_table
    from mos_pipelines.settings import get_settings

    records = dbt.ref("int_crm_contacts__normalised").df()
    blocked = dbt.ref("identity_blocked_values").df()
    matched, run = match_crm_contacts(records, blocked)
    table = model_table(run)
    session.register("_mos_match_model", table)
    session.execute(
        f'create or replace table "{dbt.this.database}"."{dbt.this.schema}"."{MODEL_TABLE}" '
        "as select * from _mos_match_model"
    )
    session.unregister("_mos_match_model")
    reports = get_settings().reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    (reports / CARD_FILE).write_text(json.dumps(card(table), indent=1))
    return matched
