-- Email engagement events with the customer of the recipient address (by email match key).
with

email_events as (

    select * from {{ ref('stg_esp__email_events') }}

),

recipients as (

    select * from {{ ref('int_marketing__email_recipients') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

keyed as (

    select
        email_events.*,
        recipients.email_match_key
    from email_events
    inner join recipients on email_events.recipient_email = recipients.recipient_email

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
