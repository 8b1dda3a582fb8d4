{#
    The conformed daily ad grain across platforms: date_day × platform × account_id × campaign_id ×
    ad_group_id (account and ad group may be null). Restated days are already resolved in staging
    (the latest file wins); rows of that file at the same grain are summed here.
#}
with

ad_spend as (

    select * from {{ ref('stg_ad_platforms__ad_spend') }}

),

aggregated as (

    select
        spend_date as date_day,
        platform,
        account_id,
        campaign_id,
        ad_group_id,
        max(campaign_name) as campaign_name,
        max(currency) as currency,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(spend) as spend,
        sum(conversions) as conversions,
        sum(conversions_value) as conversions_value,
        max(loaded_at) as loaded_at
    from ad_spend
    group by spend_date, platform, account_id, campaign_id, ad_group_id

),

final as (

    select
        -- keys
        {{ surrogate_key(['date_day', 'platform', 'account_id', 'campaign_id', 'ad_group_id']) }}
            as ad_spend_daily_id,
        date_day,
        platform,
        account_id,
        campaign_id,
        ad_group_id,

        -- dimensions
        campaign_name,
        currency,

        -- metrics
        cast(coalesce(impressions, 0) as bigint) as impressions,
        cast(coalesce(clicks, 0) as bigint) as clicks,
        coalesce(spend, 0) as spend,
        coalesce(conversions, 0) as conversions,
        coalesce(conversions_value, 0) as conversions_value,

        -- timestamps
        loaded_at

    from aggregated

)

select * from final
