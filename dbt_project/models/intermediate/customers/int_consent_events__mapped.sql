{#-
    Consent events with the customer of their subject: an address (contains '@') is looked up by
    its email match key, anything else as a user id. Subjects no customer carries (unknown to the
    identity graph, or an excluded shared identifier) are left out: nothing can be sent to them.
-#}
with

consent_events as (

    select * from {{ ref('stg_consent__consent_events') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

contact_subjects as (

    select * from {{ ref('int_identity__contact_subjects') }}

),

keyed as (

    -- the subject's node key, computed once per subject (int_identity__contact_subjects)
    select
        consent_events.*,
        contact_subjects.node_key as subject_node_key,
        case when consent_events.subject like '%@%' then 'email' else 'user_id' end as subject_type
    from consent_events
    inner join contact_subjects on consent_events.subject = contact_subjects.subject

),

final as (

    select
        -- keys
        keyed.consent_event_id,
        identity_map.customer_id,

        -- dimensions
        keyed.subject,
        keyed.subject_type,
        keyed.consent_purpose,
        keyed.consent_status,
        keyed.consent_region,
        keyed.consent_source,

        -- timestamps
        keyed.occurred_at,
        keyed.loaded_at

    from keyed
    inner join identity_map
        on keyed.subject_node_key = identity_map.node_key

)

select * from final
