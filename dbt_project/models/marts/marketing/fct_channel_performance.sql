{#
    Channel KPIs by date_day × channel × campaign_id × region.
    Region is the region of what is measured: spend and ad clicks take their campaign's region;
    email sends and clicks the recipient's region; sessions, conversions and revenue the region of
    the credited touch (its campaign's region, else its customer's). Unattributed conversions keep
    the converting customer's region. Days: spend date, send/click date, session start date and
    conversion date (not touch date).
    Conversions, new customers and revenue are the credits of var
    mos__marketing_kpi_attribution_model (default last_touch) for the conversion types of
    mos__marketing_kpi_conversion_types / _new_customer_conversion_type / _revenue_conversion_types.
    Ratios are null when their denominator is 0:
      cac = cost / new customers, cpa = cost / conversions, cvr = conversions / sessions,
      ctr = clicks / impressions, roas = revenue / cost, roi = (revenue - cost) / cost,
    where cost = ad spend + email send cost (sends × campaigns.cost_per_send).
    Incremental by date_day: every row is computed, only the dates whose rows changed (or in the lookback
    window) are written (macros/incremental/date_partitions.sql, changed_dates).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=delete_insert_strategy(),
        unique_key='date_day',
        on_schema_change='fail',
    )
}}
{%- set kpi_model = var('mos__marketing_kpi_attribution_model') %}
{%- set kpi_types = var('mos__marketing_kpi_conversion_types') %}
{%- set new_customer_type = var('mos__marketing_new_customer_conversion_type') %}
{%- set revenue_types = var('mos__marketing_revenue_conversion_types') %}
{%- set platform_channels = var('mos__marketing_platform_channels') %}

with

ad_spend as (

    select * from {{ ref('fct_ad_spend_daily') }}

),

email_events as (

    select * from {{ ref('stg_esp__email_events') }}

),

recipients as (

    select * from {{ ref('int_marketing__email_recipients') }}

),

campaign_variants as (

    select * from {{ ref('stg_marketing__campaign_variants') }}

),

campaigns as (

    select * from {{ ref('int_marketing__campaigns') }}

),

touchpoints as (

    select * from {{ ref('fct_touchpoints') }}

),

attributed_conversions as (

    select * from {{ ref('fct_attributed_conversions') }}

),

email_regions as (

    select * from {{ ref('int_marketing__email_regions') }}

),

fx_rates as (

    select * from {{ ref('fx_rates') }}

),

spend_facts as (

    select
        ad_spend.date_day,
        coalesce(
            campaigns.channel,
            case ad_spend.platform
                {%- for platform, channel in platform_channels.items() %}
                when '{{ platform }}' then '{{ channel }}'
                {%- endfor %}
            end,
            'other'
        ) as channel,
        ad_spend.campaign_id,
        coalesce(campaigns.campaign_region, 'unknown') as region,
        ad_spend.spend * fx_rates.usd_per_unit as spend_usd,
        cast(0 as double) as send_cost_usd,
        ad_spend.impressions,
        ad_spend.clicks,
        0 as sends,
        0 as sessions,
        cast(0 as double) as conversions,
        cast(0 as double) as new_customers,
        cast(0 as double) as revenue_usd
    from ad_spend
    left join campaigns on ad_spend.campaign_id = campaigns.campaign_id
    left join fx_rates on upper(ad_spend.currency) = upper(fx_rates.currency)

),

email_activity as (

    select
        email_events.email_event_type,
        email_events.campaign_id,
        email_events.variant_id,
        cast(email_events.occurred_at as date) as date_day,
        coalesce(campaigns.channel, 'email') as channel,
        coalesce(campaigns.campaign_region, email_regions.region, 'unknown') as region
    from email_events
    left join campaigns on email_events.campaign_id = campaigns.campaign_id
    left join recipients on email_events.recipient_email = recipients.recipient_email
    left join email_regions on recipients.email_match_key = email_regions.email_match_key
    where email_events.email_event_type in ('sent', 'clicked')

),

email_facts as (

    select
        email_activity.date_day,
        email_activity.channel,
        email_activity.campaign_id,
        email_activity.region,
        cast(0 as double) as spend_usd,
        case
            when email_activity.email_event_type = 'sent' then coalesce(campaign_variants.cost_per_send, 0)
            else 0
        end as send_cost_usd,
        0 as impressions,
        case when email_activity.email_event_type = 'clicked' then 1 else 0 end as clicks,
        case when email_activity.email_event_type = 'sent' then 1 else 0 end as sends,
        0 as sessions,
        cast(0 as double) as conversions,
        cast(0 as double) as new_customers,
        cast(0 as double) as revenue_usd
    from email_activity
    left join campaign_variants
        on
            email_activity.campaign_id = campaign_variants.campaign_id
            and coalesce(email_activity.variant_id, '') = coalesce(campaign_variants.variant_id, '')

),

session_facts as (

    select
        touch_date as date_day,
        channel,
        campaign_id,
        region,
        cast(0 as double) as spend_usd,
        cast(0 as double) as send_cost_usd,
        0 as impressions,
        0 as clicks,
        0 as sends,
        1 as sessions,
        cast(0 as double) as conversions,
        cast(0 as double) as new_customers,
        cast(0 as double) as revenue_usd
    from touchpoints
    where session_id is not null

),

conversion_facts as (

    select
        conversion_date as date_day,
        channel,
        campaign_id,
        region,
        cast(0 as double) as spend_usd,
        cast(0 as double) as send_cost_usd,
        0 as impressions,
        0 as clicks,
        0 as sends,
        0 as sessions,
        case when conversion_type in ({{ quoted_list(kpi_types) }}) then credit else 0 end as conversions,
        case when conversion_type = '{{ new_customer_type }}' then credit else 0 end as new_customers,
        case
            when conversion_type in ({{ quoted_list(revenue_types) }}) then coalesce(revenue_usd_credited, 0)
            else 0
        end as revenue_usd
    from attributed_conversions
    where attribution_model = '{{ kpi_model }}'

),

facts as (

    select * from spend_facts
    union all
    select * from email_facts
    union all
    select * from session_facts
    union all
    select * from conversion_facts

),

aggregated as (

    select
        date_day,
        channel,
        campaign_id,
        region,
        sum(spend_usd) as spend_usd,
        sum(send_cost_usd) as send_cost_usd,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(sends) as sends,
        sum(sessions) as sessions,
        sum(conversions) as conversions,
        sum(new_customers) as new_customers,
        sum(revenue_usd) as revenue_usd
    from facts
    group by date_day, channel, campaign_id, region

),

measured as (

    select
        *,
        spend_usd + send_cost_usd as cost_usd
    from aggregated

),

final as (

    select
        -- keys
        {{ surrogate_key(['date_day', 'channel', 'campaign_id', 'region']) }} as channel_performance_id,
        date_day,
        channel,
        campaign_id,
        region,

        -- dimensions
        '{{ kpi_model }}' as attribution_model,

        -- metrics
        cast(spend_usd as double) as spend_usd,
        cast(send_cost_usd as double) as send_cost_usd,
        cast(cost_usd as double) as cost_usd,
        cast(impressions as bigint) as impressions,
        cast(clicks as bigint) as clicks,
        cast(sends as bigint) as sends,
        cast(sessions as bigint) as sessions,
        cast(conversions as double) as conversions,
        cast(new_customers as double) as new_customers,
        cast(revenue_usd as double) as revenue_usd,
        cast(cost_usd / nullif(new_customers, 0) as double) as cac_usd,
        cast(cost_usd / nullif(conversions, 0) as double) as cpa_usd,
        cast(conversions / nullif(sessions, 0) as double) as cvr,
        cast(cast(clicks as double) / nullif(impressions, 0) as double) as ctr,
        cast(revenue_usd / nullif(cost_usd, 0) as double) as roas,
        cast((revenue_usd - cost_usd) / nullif(cost_usd, 0) as double) as roi

    from measured

)

{{ select_changed_dates('final', 'date_day') }}
