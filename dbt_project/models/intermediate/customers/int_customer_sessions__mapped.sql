-- Sessions with the customer they belong to: the session's user id's customer, else the device's.
-- is_identified_device: the customer is known from the person's own sign-up or log-in (a user id on the
-- session, or a device that sent an identify call) or from a click on an email sent to them (the tracked
-- link's token, edge email_click), not only from an order placed on the device.
with

sessions as (

    select * from {{ ref('fct_sessions') }}

),

identity_map as (

    select * from {{ ref('customer_identity_map') }}

),

final as (

    select
        -- keys
        sessions.session_id,
        coalesce(user_nodes.customer_id, device_nodes.customer_id) as customer_id,

        -- dimensions
        sessions.channel,
        (
            user_nodes.customer_id is not null
            or coalesce(device_nodes.edge_types like '%identify%', false)
            or coalesce(device_nodes.edge_types like '%email_click%', false)
        ) as is_identified_device,

        -- metrics
        sessions.event_count,
        sessions.page_view_count,

        -- timestamps
        sessions.session_start_at,
        sessions.session_end_at

    from sessions
    left join identity_map as user_nodes
        on 'user:' || sessions.user_id = user_nodes.node_key
    left join identity_map as device_nodes
        on 'anon:' || sessions.anonymous_id = device_nodes.node_key
    where coalesce(user_nodes.customer_id, device_nodes.customer_id) is not null

)

select * from final
