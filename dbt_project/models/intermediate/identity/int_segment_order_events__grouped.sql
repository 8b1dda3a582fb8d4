{#
    The devices and user ids that reported each order: `Order Completed` events carrying an
    `order_id` property. One row per (order_id, anonymous_id, user_id). These link an order to the
    visits before it even when the buyer never signed up (the order file carries only an email).
#}
with

events as (

    select * from {{ ref('stg_segment__events') }}

),

order_events as (

    select
        {{ clean_string(json_text('properties', 'order_id')) }} as order_id,
        anonymous_id,
        user_id,
        occurred_at
    from events
    where
        lower(event_name) = 'order completed'
        and (anonymous_id is not null or user_id is not null)

),

final as (

    select
        -- keys
        {{ surrogate_key(['order_id', 'anonymous_id', 'user_id']) }} as order_event_identity_key,
        order_id,
        anonymous_id,
        user_id,

        -- metrics
        count(*) as event_count,

        -- timestamps
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at

    from order_events
    where order_id is not null
    group by order_id, anonymous_id, user_id

)

select * from final
