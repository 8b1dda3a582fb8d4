{{ config(meta={'dagster': {'ref': {'name': 'fct_ad_spend_daily'}}}) }}
{#- fct_ad_spend_daily neither loses nor invents spend: totals per platform equal staging's. -#}
with

staged as (

    select
        platform,
        sum(spend) as spend
    from {{ ref('stg_ad_platforms__ad_spend') }}
    group by platform

),

daily as (

    select
        platform,
        sum(spend) as spend
    from {{ ref('fct_ad_spend_daily') }}
    group by platform

)

select
    staged.platform,
    staged.spend as staged_spend,
    daily.spend as daily_spend
from staged
full outer join daily
    on staged.platform = daily.platform
where abs(coalesce(staged.spend, 0) - coalesce(daily.spend, 0)) > 0.005
