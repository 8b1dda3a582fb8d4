-- Segment events with the customer they belong to: the user id's customer, else the device's.
with

events as (

    select * from {{ ref('fct_events') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

final as (

    select
        -- keys
        events.event_id,
        coalesce(user_nodes.customer_id, device_nodes.customer_id) as customer_id,

        -- dimensions
        events.event_type,
        events.event_name,
        events.locale,
        case when user_nodes.customer_id is not null then 'user_id' else 'anonymous_id' end as mapped_by,

        -- timestamps
        events.occurred_at

    from events
    left join identity_map as user_nodes
        on 'user:' || events.user_id = user_nodes.node_key
    left join identity_map as device_nodes
        on 'anon:' || events.anonymous_id = device_nodes.node_key
    where coalesce(user_nodes.customer_id, device_nodes.customer_id) is not null

)

select * from final
