{#
    Historical value per customer with at least one completed order: completed orders, revenue in
    USD (fx_rates seed), gross margin = revenue × var mos__marketing_gross_margin, first and last
    order. Orders belong to the customer of their `order:<id>` node in dim_customer_identity_map.
#}
{%- set margin = var('mos__marketing_gross_margin') | float %}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

fx_rates as (

    select * from {{ ref('fx_rates') }}

),

customer_orders as (

    select
        identity_map.customer_id,
        orders.order_id,
        orders.created_at,
        orders.amount * fx_rates.usd_per_unit as revenue_usd
    from orders
    inner join identity_map on identity_map.node_key = 'order:' || orders.order_id
    left join fx_rates on orders.currency = upper(fx_rates.currency)
    where orders.is_completed

),

aggregated as (

    select
        customer_id,
        count(*) as order_count,
        sum(revenue_usd) as revenue_usd,
        min(created_at) as first_order_at,
        max(created_at) as last_order_at
    from customer_orders
    group by customer_id

),

final as (

    select
        -- keys
        customer_id,

        -- metrics
        cast(order_count as bigint) as order_count,
        cast(revenue_usd as double) as revenue_usd,
        cast(revenue_usd * {{ margin }} as double) as gross_margin_usd,
        cast(revenue_usd / order_count as double) as average_order_value_usd,

        -- dates and timestamps
        cast(first_order_at as date) as first_order_date,
        cast(last_order_at as date) as last_order_date,
        first_order_at,
        last_order_at

    from aggregated

)

select * from final
