{#-
    Sessions, conversions, new customers and revenue by date_day × channel × region ×
    customer_segment: the customer-side KPIs of fct_channel_performance split by the segment of
    the customer behind them. Sessions take the segment of the session's customer (fct_touchpoints),
    conversion credits that of the converting customer; channel, region, day, attribution model and
    conversion types are exactly fct_channel_performance's, so summing over segments gives its
    sessions, conversions, new customers and revenue. Segments: company-size bands of var
    mos__marketing_customer_segments over int_customers__firmographics.account_contact_count,
    `no_account` for customers without an account, `unknown` for sessions without a known customer.
    Spend and send cost are not here: they are bought per channel and campaign, not per segment,
    and splitting them by segment would need an allocation rule the data do not give.
-#}
{%- set kpi_model = var('mos__marketing_kpi_attribution_model') %}
{%- set kpi_types = var('mos__marketing_kpi_conversion_types') %}
{%- set new_customer_type = var('mos__marketing_new_customer_conversion_type') %}
{%- set revenue_types = var('mos__marketing_revenue_conversion_types') %}
{%- set segments = var('mos__marketing_customer_segments') %}

with

touchpoints as (

    select * from {{ ref('fct_touchpoints') }}

),

attributed_conversions as (

    select * from {{ ref('fct_attributed_conversions') }}

),

firmographics as (

    select * from {{ ref('int_customers__firmographics') }}

),

customer_segments as (

    select
        customer_id,
        case
            when account_key is null or account_contact_count is null then 'no_account'
            {%- for band in segments %}
            {%- if band['max_contacts'] is none %}
            else '{{ band["segment"] }}'
            {%- else %}
            when account_contact_count <= {{ band['max_contacts'] | int }} then '{{ band["segment"] }}'
            {%- endif %}
            {%- endfor %}
        end as customer_segment
    from firmographics

),

session_facts as (

    select
        touchpoints.touch_date as date_day,
        touchpoints.channel,
        touchpoints.region,
        coalesce(customer_segments.customer_segment, 'unknown') as customer_segment,
        1 as sessions,
        cast(0 as double) as conversions,
        cast(0 as double) as new_customers,
        cast(0 as double) as revenue_usd
    from touchpoints
    left join customer_segments
        on touchpoints.customer_id = customer_segments.customer_id
    where touchpoints.session_id is not null

),

conversion_facts as (

    select
        attributed_conversions.conversion_date as date_day,
        attributed_conversions.channel,
        attributed_conversions.region,
        coalesce(customer_segments.customer_segment, 'unknown') as customer_segment,
        0 as sessions,
        case
            when attributed_conversions.conversion_type in ({{ quoted_list(kpi_types) }})
                then attributed_conversions.credit
            else 0
        end as conversions,
        case
            when attributed_conversions.conversion_type = '{{ new_customer_type }}' then attributed_conversions.credit
            else 0
        end as new_customers,
        case
            when attributed_conversions.conversion_type in ({{ quoted_list(revenue_types) }})
                then coalesce(attributed_conversions.revenue_usd_credited, 0)
            else 0
        end as revenue_usd
    from attributed_conversions
    left join customer_segments
        on attributed_conversions.customer_id = customer_segments.customer_id
    where attributed_conversions.attribution_model = '{{ kpi_model }}'

),

facts as (

    select * from session_facts
    union all
    select * from conversion_facts

),

aggregated as (

    select
        date_day,
        channel,
        region,
        customer_segment,
        sum(sessions) as sessions,
        sum(conversions) as conversions,
        sum(new_customers) as new_customers,
        sum(revenue_usd) as revenue_usd
    from facts
    group by date_day, channel, region, customer_segment

),

final as (

    select
        -- keys
        {{ surrogate_key(['date_day', 'channel', 'region', 'customer_segment']) }} as channel_segment_performance_id,
        date_day,
        channel,
        region,
        customer_segment,

        -- dimensions
        '{{ kpi_model }}' as attribution_model,

        -- metrics
        cast(sessions as bigint) as sessions,
        cast(conversions as double) as conversions,
        cast(new_customers as double) as new_customers,
        cast(revenue_usd as double) as revenue_usd,
        cast(conversions / nullif(sessions, 0) as double) as cvr

    from aggregated

)

select * from final
