{#
    Multi-touch attribution: one row per conversion × credited touch × attribution model.
    A conversion's touches are those of its customer and of the customer of the device that sent
    the conversion event (fct_conversions.event_customer_id), touched at or before the conversion
    and at most var mos__attribution_lookback_days before it. An email click followed within var
    mos__attribution_click_session_window_seconds by an email session of the same campaign is the
    same touch as that session and is dropped. Touches are ordered by time (then touchpoint_id).
    Models (n = number of touches, k = position):
      first_touch     1 for k = 1
      last_touch      1 for k = n
      linear          1 / n for every touch
      position_based  var mos__attribution_position_based_weights (40/20/40): first and last get
                      their shares, the middle touches share the rest equally; n = 1 -> 1;
                      n = 2 -> 0.5 / 0.5
    Only touches with credit > 0 are kept. A conversion without touches gets one row per model with
    channel `unattributed`, touchpoint_id null and credit 1. Credits sum to 1 per conversion and model.
    Incremental by conversion_date: every row is computed, only the dates whose rows changed (or in the lookback
    window) are written (macros/incremental/date_partitions.sql, changed_dates).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=delete_insert_strategy(),
        unique_key='conversion_date',
        on_schema_change='fail',
    )
}}
{%- set lookback_days = var('mos__attribution_lookback_days') | int %}
{%- set click_window = var('mos__attribution_click_session_window_seconds') | int %}
{%- set weights = var('mos__attribution_position_based_weights') %}
{%- set first_weight = weights['first'] | float %}
{%- set last_weight = weights['last'] | float %}
{%- set models = ['first_touch', 'last_touch', 'linear', 'position_based'] %}

with

conversions as (

    select * from {{ ref('fct_conversions') }}

),

touchpoints as (

    select * from {{ ref('fct_touchpoints') }}

),

attribution_models as (

    {% for model in models %}
    select '{{ model }}' as attribution_model
    {%- if not loop.last %}
    union all
    {%- endif %}
    {% endfor %}

),

conversion_customers as (

    select
        conversion_id,
        converted_at,
        customer_id
    from conversions
    where customer_id is not null
    union
    select
        conversion_id,
        converted_at,
        event_customer_id as customer_id
    from conversions
    where event_customer_id is not null

),

candidate_touches as (

    select distinct
        conversion_customers.conversion_id,
        touchpoints.touchpoint_id,
        touchpoints.touch_type,
        touchpoints.channel,
        touchpoints.campaign_id,
        touchpoints.region,
        touchpoints.touched_at
    from conversion_customers
    inner join touchpoints
        on
            conversion_customers.customer_id = touchpoints.customer_id
            and conversion_customers.converted_at >= touchpoints.touched_at
            and touchpoints.touched_at
            >= {{ dbt.dateadd('day', -1 * lookback_days, 'conversion_customers.converted_at') }}

),

landed_clicks as (

    -- email clicks whose landing session is also among the conversion's touches
    select distinct
        clicks.conversion_id,
        clicks.touchpoint_id
    from candidate_touches as clicks
    inner join candidate_touches as visits
        on
            clicks.conversion_id = visits.conversion_id
            and clicks.campaign_id = visits.campaign_id
            and visits.touch_type in ('session', 'ad_click')
            and clicks.touched_at <= visits.touched_at
            and visits.touched_at <= {{ dbt.dateadd('second', click_window, 'clicks.touched_at') }}
    where clicks.touch_type = 'email_click'

),

credited_touches as (

    select
        candidate_touches.*,
        row_number() over (
            partition by candidate_touches.conversion_id
            order by candidate_touches.touched_at, candidate_touches.touchpoint_id
        ) as touch_position,
        count(*) over (partition by candidate_touches.conversion_id) as touch_count
    from candidate_touches
    left join landed_clicks
        on
            candidate_touches.conversion_id = landed_clicks.conversion_id
            and candidate_touches.touchpoint_id = landed_clicks.touchpoint_id
    where landed_clicks.touchpoint_id is null

),

weighted as (

    select
        credited_touches.*,
        attribution_models.attribution_model,
        case attribution_models.attribution_model
            when 'first_touch' then case when credited_touches.touch_position = 1 then 1.0 else 0.0 end
            when 'last_touch'
                then case when credited_touches.touch_position = credited_touches.touch_count then 1.0 else 0.0 end
            when 'linear' then 1.0 / credited_touches.touch_count
            when 'position_based' then
                case
                    when credited_touches.touch_count = 1 then 1.0
                    when credited_touches.touch_count = 2 then 0.5
                    when credited_touches.touch_position = 1 then {{ first_weight }}
                    when credited_touches.touch_position = credited_touches.touch_count then {{ last_weight }}
                    else (1.0 - {{ first_weight }} - {{ last_weight }}) / (credited_touches.touch_count - 2)
                end
        end as credit
    from credited_touches
    cross join attribution_models

),

attributed as (

    select
        conversions.conversion_id,
        weighted.attribution_model,
        weighted.touchpoint_id,
        weighted.touch_type,
        weighted.channel,
        weighted.campaign_id,
        weighted.region as touch_region,
        weighted.touched_at,
        cast(weighted.touch_position as integer) as touch_position,
        cast(weighted.touch_count as integer) as touch_count,
        cast(weighted.credit as double) as credit
    from weighted
    inner join conversions on weighted.conversion_id = conversions.conversion_id
    where weighted.credit > 0

),

touched_conversions as (

    select distinct conversion_id
    from credited_touches

),

unattributed as (

    -- an anti-join through a left join: DuckDB 2.0.0's NOT EXISTS here hits the fatal
    -- "dict-surviving cache" error on tables written earlier in the same process (docs/DECISIONS.md)
    select
        conversions.conversion_id,
        attribution_models.attribution_model,
        cast(null as {{ dbt.type_string() }}) as touchpoint_id,
        cast(null as {{ dbt.type_string() }}) as touch_type,
        'unattributed' as channel,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        conversions.region as touch_region,
        cast(null as {{ dbt.type_timestamp() }}) as touched_at,
        cast(null as integer) as touch_position,
        0 as touch_count,
        cast(1.0 as double) as credit
    from conversions
    left join touched_conversions on conversions.conversion_id = touched_conversions.conversion_id
    cross join attribution_models
    where touched_conversions.conversion_id is null

),

credits as (

    select * from attributed
    union all
    select * from unattributed

),

final as (

    select
        -- keys
        {{ surrogate_key(['credits.conversion_id', 'credits.attribution_model', 'credits.touchpoint_id']) }}
            as attributed_conversion_id,
        credits.conversion_id,
        credits.attribution_model,
        credits.touchpoint_id,
        conversions.customer_id,
        credits.campaign_id,

        -- dimensions
        conversions.conversion_type,
        credits.touch_type,
        credits.channel,
        credits.touch_region as region,
        conversions.region as customer_region,
        credits.touch_position,
        cast(credits.touch_count as integer) as touch_count,

        -- metrics
        credits.credit,
        conversions.revenue_usd,
        conversions.revenue_usd * credits.credit as revenue_usd_credited,

        -- timestamps
        conversions.converted_at,
        conversions.conversion_date,
        credits.touched_at

    from credits
    inner join conversions on credits.conversion_id = conversions.conversion_id

)

{{ select_changed_dates('final', 'conversion_date') }}
