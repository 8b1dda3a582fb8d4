{#-
    The lifecycle stage the CRM should show for every customer it knows (at least one CRM record),
    from the first stage sales cares about on, with granted consent for the purpose; a lead (lead to
    opportunity) only once its next best action handed it to sales (decisions.next_best_action, any
    day: the hand-off is sticky; every lead before decisioning ran). The delivery's
    ledger turns this state into changes: a row is sent when its stage or address changed since the
    CRM last acknowledged it, and a customer who leaves the model is sent as a removal.
-#}
{%- set crm = var('mos__activation_sync_models')['sync_crm__lifecycle_stages'] -%}

with

contacts as (

    select * from {{ ref('int_activation__customer_contacts') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

lifecycle as (

    select * from {{ ref('dim_customer_lifecycle') }}

),

consent as (

    select * from {{ ref('dim_customer_consents') }}

),

crm_records as (

    select
        customer_id,
        {{ dbt.listagg("source_system || ':' || source_record_id", "','", "order by source_system, source_record_id") }}
            as crm_record_ids
    from identity_map
    where node_type = 'crm' and source_record_id is not null
    group by customer_id

),

final as (

    select
        -- keys
        lifecycle.customer_id,

        -- dimensions
        crm_records.crm_record_ids,
        contacts.email_address,
        lifecycle.lifecycle_stage,
        lifecycle.stage_reason,
        lifecycle.account_key,
        lifecycle.account_stage,
        consent.status as consent_status,

        -- timestamps
        lifecycle.stage_entered_at

    from lifecycle
    inner join crm_records
        on lifecycle.customer_id = crm_records.customer_id
    inner join consent
        on
            lifecycle.customer_id = consent.customer_id
            and consent.purpose = '{{ crm["consent_purpose"] }}'
    left join contacts
        on lifecycle.customer_id = contacts.customer_id
    where
        consent.status = 'granted'
        and lifecycle.lifecycle_stage in ({{ quoted_list(crm['lifecycle_stages']) }})
        and (
            lifecycle.lifecycle_stage not in ('lead', 'mql', 'sql', 'opportunity')
            or {{ decision_filter('lifecycle.customer_id', ['route_to_sales'], ever=true) }}
        )

)

select * from final
