with

events as (

    select * from {{ ref('stg_segment__events') }}

),

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
        events.loaded_at

    from events
    left join traffic_sources
        on
            coalesce({{ utm_key('events.utm_source') }}, '') = coalesce(traffic_sources.utm_source_key, '')
            and coalesce({{ utm_key('events.utm_medium') }}, '') = coalesce(traffic_sources.utm_medium_key, '')
            and coalesce(events.referrer_host, '') = coalesce(traffic_sources.referrer_host, '')
            and coalesce(events.page_host, '') = coalesce(traffic_sources.page_host, '')

)

select * from final
