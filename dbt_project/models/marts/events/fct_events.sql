{#
    One row per deduplicated Segment event. Incremental by date (macros/incremental/date_partitions.sql):
    a run rebuilds the lookback window's dates and the dates of events loaded since the last build. A row
    depends only on its event and the channel mapping, so the rebuilt dates equal a full refresh's; after
    changing the channel_mapping seed or its vars, rebuild with --full-refresh.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=delete_insert_strategy(),
        unique_key='event_date',
        on_schema_change='fail',
    )
}}

with

events as (

    select * from {{ ref('stg_segment__events') }}

),
{% if is_incremental() %}

rebuilt_dates as (

    -- from the model, not the `events` CTE: a CTE read twice is materialized whole (DuckDB: every staged event with
    -- its JSON columns), one read once is inlined and only the rebuilt dates' events are read
    {{ dates_loaded_since_last_build(
        ref('stg_segment__events') ~ ' as loaded_events',
        'cast(loaded_events.occurred_at as date)',
        'loaded_events.loaded_at',
        'event_date',
        'loaded_at'
    ) }}

),

scoped_events as (

    select events.*
    from events
    inner join rebuilt_dates on cast(events.occurred_at as date) = rebuilt_dates.partition_date

),
{% else %}

scoped_events as (

    select * from events

),
{% endif %}

traffic_sources as (

    select * from {{ ref('int_traffic_sources__channel_mapped') }}

),

final as (

    select
        -- keys
        events.event_id,
        coalesce(events.anonymous_id, 'user:' || events.user_id) as device_key,
        events.anonymous_id,
        events.user_id,

        -- dimensions
        events.event_type,
        events.event_name,
        traffic_sources.channel,
        traffic_sources.channel_rule,
        events.utm_source,
        events.utm_medium,
        events.utm_campaign,
        events.utm_content,
        events.utm_term,
        events.page_url,
        events.page_path,
        events.page_title,
        events.page_referrer,
        events.page_host,
        events.referrer_host,
        events.locale,
        events.properties,
        events.traits,

        -- timestamps
        events.occurred_at,
        cast(events.occurred_at as date) as event_date,
        events.loaded_at

    from scoped_events as events
    left join traffic_sources
        on
            coalesce({{ utm_key('events.utm_source') }}, '') = coalesce(traffic_sources.utm_source_key, '')
            and coalesce({{ utm_key('events.utm_medium') }}, '') = coalesce(traffic_sources.utm_medium_key, '')
            and coalesce(events.referrer_host, '') = coalesce(traffic_sources.referrer_host, '')
            and coalesce(events.page_host, '') = coalesce(traffic_sources.page_host, '')

)

select * from final
