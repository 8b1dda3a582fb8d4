-- Orders with their customer and the amount in USD (seed fx_rates).
with

orders as (

    select * from {{ ref('fct_orders') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

rates as (

    select * from {{ ref('fx_rates') }}

),

final as (

    select
        -- keys
        orders.order_id,
        identity_map.customer_id,

        -- dimensions
        orders.currency,
        orders.order_status,
        orders.is_completed,

        -- metrics
        orders.amount,
        orders.amount * rates.usd_per_unit as amount_usd,

        -- timestamps
        orders.created_at

    from orders
    inner join identity_map
        on 'order:' || orders.order_id = identity_map.node_key
    left join rates
        on orders.currency = upper(rates.currency)

)

select * from final
