-- Sessions with the customer they belong to: the session's user id's customer, else the device's.
-- is_identified_device: the customer is known from the person's own sign-up or log-in (a user id on the
-- session, or a device that sent an identify call), not only from an order placed on the device.
-- device_email_click_at: when the first session on the device that landed through a tracked link of an
-- email sent to the customer ended (edge email_click); from then on the device is known to be theirs.
-- A table, not a view: its four data tests and int_customers__activity each evaluated the view again (issue 20).
{{ config(materialized='table') }}
{%- set token_param = var('mos__identity_email_click_token_param') %}
with

sessions as (

    select * from {{ ref('fct_sessions') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

mapped as (

    select
        sessions.session_id,
        sessions.anonymous_id,
        coalesce(user_nodes.customer_id, device_nodes.customer_id) as customer_id,
        sessions.channel,
        (
            user_nodes.customer_id is not null
            or coalesce(device_nodes.edge_types like '%identify%', false)
        ) as is_identified_device,
        coalesce(device_nodes.edge_types like '%email_click%', false)
        and sessions.landing_page_url like '%{{ token_param }}=%' as is_email_click_landing,
        sessions.event_count,
        sessions.page_view_count,
        sessions.session_start_at,
        sessions.session_end_at
    from sessions
    left join identity_map as user_nodes
        on 'user:' || sessions.user_id = user_nodes.node_key
    left join identity_map as device_nodes
        on 'anon:' || sessions.anonymous_id = device_nodes.node_key
    where coalesce(user_nodes.customer_id, device_nodes.customer_id) is not null

),

final as (

    select
        -- keys
        session_id,
        customer_id,

        -- dimensions
        channel,
        is_identified_device,

        -- metrics
        event_count,
        page_view_count,

        -- timestamps
        session_start_at,
        session_end_at,
        min(case when is_email_click_landing then session_end_at end)
            over (partition by anonymous_id) as device_email_click_at

    from mapped

)

select * from final
