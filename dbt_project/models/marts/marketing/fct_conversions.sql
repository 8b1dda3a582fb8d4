{#
    One row per conversion, for every type listed in the conversion_types seed:
      - `event` types: a Segment track event of that name (fct_events), at the event's time;
      - `completed_order`: every completed order (fct_orders.is_completed);
      - `first_completed_order`: the customer's first completed order.
    customer_id: the customer of the order (dim_customer_identity_map, node `order:<id>`) or of the
    event's user id / device. event_customer_id: the customer of the device that sent the event
    (for orders, the device of the `Order Completed` event carrying the order id): attribution
    credits the touches of both, because a buyer who checked out without logging in is linked to
    their order by email only and to their visits by nothing else.
    revenue_usd: order amount × the fx_rates seed (null for non-order conversions).
    Incremental by conversion_date: every row is computed, only the dates whose rows changed (or in the lookback
    window) are written (macros/incremental/date_partitions.sql, changed_dates).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=delete_insert_strategy(),
        unique_key='conversion_date',
        on_schema_change='fail',
    )
}}
with

conversion_types as (

    select * from {{ ref('conversion_types') }}

),

events as (

    select * from {{ ref('fct_events') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

fx_rates as (

    select * from {{ ref('fx_rates') }}

),

customer_regions as (

    select * from {{ ref('int_marketing__customer_regions') }}

),

event_customers as (

    select
        events.event_id,
        events.event_name,
        events.occurred_at,
        {{ json_text('events.properties', 'order_id') }} as order_id,
        coalesce(by_user.customer_id, by_device.customer_id) as customer_id,
        coalesce(by_device.customer_id, by_user.customer_id) as device_customer_id
    from events
    left join identity_map as by_user on by_user.node_key = 'user:' || events.user_id
    left join identity_map as by_device
        on by_device.node_key = case
                when events.anonymous_id is not null then 'anon:' || events.anonymous_id
                else events.device_key
            end
    where events.event_type = 'track'

),

event_conversions as (

    select
        conversion_types.conversion_type,
        event_customers.event_id as source_id,
        cast(null as {{ dbt.type_string() }}) as order_id,
        event_customers.customer_id,
        event_customers.device_customer_id as event_customer_id,
        event_customers.occurred_at as converted_at,
        cast(null as double) as revenue_usd,
        cast(null as double) as amount,
        cast(null as {{ dbt.type_string() }}) as currency
    from event_customers
    inner join conversion_types
        on lower(trim(event_customers.event_name)) = lower(trim(conversion_types.event_name))
    where conversion_types.detected_by = 'event'

),

order_events_ranked as (

    -- the device that reported each order (the earliest Order Completed event carrying its id)
    select
        order_id,
        device_customer_id,
        row_number() over (partition by order_id order by occurred_at, event_id) as row_rank
    from event_customers
    where order_id is not null and lower(event_name) = 'order completed'

),

order_events as (

    select
        order_id,
        device_customer_id
    from order_events_ranked
    where row_rank = 1

),

completed_orders as (

    select
        orders.order_id,
        coalesce(by_order.customer_id, order_events.device_customer_id) as customer_id,
        order_events.device_customer_id as event_customer_id,
        orders.created_at as converted_at,
        orders.amount * fx_rates.usd_per_unit as revenue_usd,
        orders.amount,
        orders.currency
    from orders
    left join identity_map as by_order on by_order.node_key = 'order:' || orders.order_id
    left join order_events on orders.order_id = order_events.order_id
    left join fx_rates on orders.currency = upper(fx_rates.currency)
    where orders.is_completed and orders.created_at is not null

),

ranked_orders as (

    select
        *,
        row_number() over (partition by customer_id order by converted_at, order_id) as customer_order_number
    from completed_orders

),

order_conversions as (

    select
        conversion_types.conversion_type,
        ranked_orders.order_id as source_id,
        ranked_orders.order_id,
        ranked_orders.customer_id,
        ranked_orders.event_customer_id,
        ranked_orders.converted_at,
        ranked_orders.revenue_usd,
        ranked_orders.amount,
        ranked_orders.currency
    from ranked_orders
    inner join conversion_types
        on
            conversion_types.detected_by = 'completed_order'
            or (
                conversion_types.detected_by = 'first_completed_order'
                and ranked_orders.customer_order_number = 1
                and ranked_orders.customer_id is not null
            )

),

conversions as (

    select * from event_conversions
    union all
    select * from order_conversions

),

final as (

    select
        -- keys
        {{ surrogate_key(['conversions.conversion_type', 'conversions.source_id']) }} as conversion_id,
        conversions.customer_id,
        conversions.event_customer_id,
        conversions.order_id,
        conversions.source_id,

        -- dimensions
        conversions.conversion_type,
        coalesce(by_customer.region, by_event_customer.region, 'unknown') as region,
        conversions.currency,

        -- metrics
        conversions.amount,
        conversions.revenue_usd,

        -- timestamps
        conversions.converted_at,
        cast(conversions.converted_at as date) as conversion_date

    from conversions
    left join customer_regions as by_customer on conversions.customer_id = by_customer.customer_id
    left join customer_regions as by_event_customer on conversions.event_customer_id = by_event_customer.customer_id

)

{{ select_changed_dates('final', 'conversion_date') }}
