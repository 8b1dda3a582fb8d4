-- The one timestamp the customer windows end at: var mos__customers_as_of, else the latest activity in the data.
with

events as (

    select max(occurred_at) as latest_at from {{ ref('fct_events') }}

),

email_events as (

    select max(occurred_at) as latest_at from {{ ref('stg_esp__email_events') }}

),

orders as (

    select max(created_at) as latest_at from {{ ref('fct_orders') }}

),

latest as (

    select latest_at from events
    union all
    select latest_at from email_events
    union all
    select latest_at from orders

),

final as (

    select
        {%- if var('mos__customers_as_of') is not none %}
        cast('{{ var("mos__customers_as_of") }}' as timestamp) as as_of_at,
        {%- else %}
        coalesce(max(latest_at), cast('1970-01-01' as timestamp)) as as_of_at,
        {%- endif %}
        '{{ "var" if var("mos__customers_as_of") is not none else "data" }}' as as_of_source
    from latest

)

select * from final
