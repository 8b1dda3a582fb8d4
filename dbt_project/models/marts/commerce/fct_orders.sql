{%- set completed_statuses = var('mos__completed_order_statuses') | map('lower') | list %}

with

orders as (

    select * from {{ ref('stg_commerce__orders') }}

),

final as (

    select
        -- keys
        order_id,
        user_id,

        -- dimensions
        lower(email) as email,
        currency,
        order_status,
        lower(order_status) in ({{ quoted_list(completed_statuses) }}) as is_completed,

        -- metrics
        amount,

        -- dates and timestamps
        cast(created_at as date) as order_date,
        created_at,
        loaded_at

    from orders

)

select * from final
