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
        coalesce(users.customer_id, devices.customer_id) as customer_id,

        -- dimensions
        sessions.channel,

        -- metrics
        sessions.event_count,
        sessions.page_view_count,

        -- timestamps
        sessions.session_start_at,
        sessions.session_end_at

    from sessions
    left join identity_map as users
        on 'user:' || sessions.user_id = users.node_key
    left join identity_map as devices
        on 'anon:' || sessions.anonymous_id = devices.node_key
    where coalesce(users.customer_id, devices.customer_id) is not null

)

select * from final
