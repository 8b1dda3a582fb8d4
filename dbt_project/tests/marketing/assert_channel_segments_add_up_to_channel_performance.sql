{{ config(meta={"dagster": {"ref": {"name": "fct_channel_segment_performance"}}}) }}

-- Fails for every day × channel × region where the segments of fct_channel_segment_performance do
-- not add up to the sessions, conversions, new customers and revenue of fct_channel_performance.
with

segments as (

    select * from {{ ref('fct_channel_segment_performance') }}

),

channels as (

    select * from {{ ref('fct_channel_performance') }}

),

segment_totals as (

    select
        date_day,
        channel,
        region,
        sum(sessions) as sessions,
        sum(conversions) as conversions,
        sum(new_customers) as new_customers,
        sum(revenue_usd) as revenue_usd
    from segments
    group by date_day, channel, region

),

channel_totals as (

    select
        date_day,
        channel,
        region,
        sum(sessions) as sessions,
        sum(conversions) as conversions,
        sum(new_customers) as new_customers,
        sum(revenue_usd) as revenue_usd
    from channels
    group by date_day, channel, region
    having sum(sessions) > 0 or sum(conversions) > 0 or sum(new_customers) > 0 or sum(revenue_usd) > 0

),

compared as (

    select
        coalesce(segment_totals.date_day, channel_totals.date_day) as date_day,
        coalesce(segment_totals.channel, channel_totals.channel) as channel,
        coalesce(segment_totals.region, channel_totals.region) as region,
        segment_totals.sessions as segment_sessions,
        channel_totals.sessions as channel_sessions,
        segment_totals.conversions as segment_conversions,
        channel_totals.conversions as channel_conversions,
        segment_totals.new_customers as segment_new_customers,
        channel_totals.new_customers as channel_new_customers,
        segment_totals.revenue_usd as segment_revenue_usd,
        channel_totals.revenue_usd as channel_revenue_usd
    from segment_totals
    full outer join channel_totals
        on
            segment_totals.date_day = channel_totals.date_day
            and segment_totals.channel = channel_totals.channel
            and segment_totals.region = channel_totals.region

)

select * from compared
where
    coalesce(segment_sessions, 0) != coalesce(channel_sessions, 0)
    or abs(coalesce(segment_conversions, 0) - coalesce(channel_conversions, 0)) > 1e-6
    or abs(coalesce(segment_new_customers, 0) - coalesce(channel_new_customers, 0)) > 1e-6
    or abs(coalesce(segment_revenue_usd, 0) - coalesce(channel_revenue_usd, 0)) > 1e-3
