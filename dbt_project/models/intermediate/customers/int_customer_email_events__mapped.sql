-- Email engagement events with the customer of the recipient address (by email match key).
with

email_events as (

    select * from {{ ref('stg_esp__email_events') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

keyed as (

    select
        *,
        {{ email_match_key(normalise_email('recipient_email')) }} as email_match_key
    from email_events

),

final as (

    select
        -- keys
        keyed.email_event_id,
        identity_map.customer_id,
        keyed.message_id,
        keyed.campaign_id,

        -- dimensions
        keyed.email_event_type,

        -- timestamps
        keyed.occurred_at

    from keyed
    inner join identity_map
        on 'email:' || keyed.email_match_key = identity_map.node_key

)

select * from final
