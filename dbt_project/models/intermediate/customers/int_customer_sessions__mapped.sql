-- Sessions with the customer they belong to: the session's user id's customer, else the device's.
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
