{{ config(severity='warn', meta={"dagster": {"ref": {"name": "fct_orders"}}}) }}

-- Warns about currencies of orders or ad spend that the fx_rates seed lacks: their USD amounts
-- are null in the marketing marts until a rate is added.
with

rates as (

    select * from {{ ref('fx_rates') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

ad_spend as (

    select * from {{ ref('fct_ad_spend_daily') }}

),

currencies as (

    select distinct
        upper(orders.currency) as currency,
        'fct_orders' as used_in
    from orders
    where orders.currency is not null
    union all
    select distinct
        upper(ad_spend.currency) as currency,
        'fct_ad_spend_daily' as used_in
    from ad_spend
    where ad_spend.currency is not null

)

select currencies.*
from currencies
left join rates on currencies.currency = upper(rates.currency)
where rates.currency is null
