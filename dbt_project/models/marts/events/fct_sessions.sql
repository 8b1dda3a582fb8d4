{#
    Sessions: a device's events split where the gap between two consecutive events exceeds
    var mos__session_timeout_minutes (default 30; a gap of exactly the timeout stays in the session).

    Incremental strategy. A device's sessions can change only from its earliest new event on, so an
    incremental run takes every device that has
      - an event that happened in the lookback: on or after the start of the day var
        mos__sessions_lookback_days days before the day of the table's latest session end, or
      - an event loaded at or after the latest load already reflected in the table (late-arriving
        events, however old their timestamp),
    keeps that device's sessions that closed more than the timeout before its earliest such event
    (no event on or after it can reach them, and they keep their numbers), and recomputes the
    device's sessions from its events after the last kept one, numbered on from it. The kept and the
    recomputed rows replace the device's rows (delete+insert keyed on device_key, so sessions that a
    late event merged away are deleted too). The result equals a full refresh on the same data.
    Trade-off: the `loaded_at` watermark assumes raw `_loaded_at` grows with each load. Rows loaded
    with an older `_loaded_at` than the table has seen AND a timestamp older than the lookback (e.g.
    a hand-made backfill into raw) are only picked up by `--full-refresh`.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=delete_insert_strategy(),
        unique_key='device_key',
        on_schema_change='fail',
    )
}}

{%- set timeout_seconds = var('mos__session_timeout_minutes') * 60 %}
{%- set landing_columns = {
    'anonymous_id': 'anonymous_id',
    'page_url': 'page_url',
    'page_path': 'page_path',
    'page_referrer': 'page_referrer',
    'utm_source': 'utm_source',
    'utm_medium': 'utm_medium',
    'utm_campaign': 'utm_campaign',
    'utm_content': 'utm_content',
    'utm_term': 'utm_term',
    'channel': 'channel',
} %}

with

events as (

    select
        event_id,
        device_key,
        anonymous_id,
        user_id,
        event_type,
        channel,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        page_url,
        page_path,
        page_referrer,
        occurred_at,
        loaded_at
    from {{ ref('fct_events') }}

),

{% if is_incremental() %}

watermarks as (

    select
        -- whole days, as the staging lookback: from the start of the day N days before the latest session's day
        coalesce(
            cast(
                {{ dbt.dateadd(
                    'day',
                    -1 * var('mos__sessions_lookback_days'),
                    'cast(max(cast(session_end_at as date)) as ' ~ dbt.type_timestamp() ~ ')'
                ) }} as {{ dbt.type_timestamp() }}
            ),
            cast('1900-01-01' as {{ dbt.type_timestamp() }})
        ) as rebuild_occurred_from,
        coalesce(
            max(last_event_loaded_at),
            cast('1900-01-01' as {{ dbt.type_timestamp() }})
        ) as rebuild_loaded_from
    from {{ this }}

),

devices_to_rebuild as (

    -- each device with an event that may change its sessions, and the earliest such event. Read from the model, not
    -- the `events` CTE: a CTE read twice is materialized whole (DuckDB: every event's sixteen columns, most of an
    -- incremental run's time), one read once is inlined and scans only the devices' events.
    select
        changed_events.device_key,
        min(changed_events.occurred_at) as first_changed_at
    from {{ ref('fct_events') }} as changed_events
    cross join watermarks
    where
        changed_events.occurred_at >= watermarks.rebuild_occurred_from
        or changed_events.loaded_at >= watermarks.rebuild_loaded_from
    group by changed_events.device_key

),

kept_sessions as (

    -- the device's sessions that closed more than the timeout before its earliest changed event
    select built.*
    from {{ this }} as built
    inner join devices_to_rebuild
        on built.device_key = devices_to_rebuild.device_key
    where
        {{ seconds_between('built.session_end_at', 'devices_to_rebuild.first_changed_at') }} > {{ timeout_seconds }}

),

last_kept as (

    select
        device_key,
        max(session_end_at) as kept_until,
        max(session_number) as kept_sessions
    from kept_sessions
    group by device_key

),

scoped_events as (

    -- the device's events after its last kept session (all of them when none is kept)
    select
        events.*,
        coalesce(last_kept.kept_sessions, 0) as sessions_before
    from events
    inner join devices_to_rebuild
        on events.device_key = devices_to_rebuild.device_key
    left join last_kept
        on events.device_key = last_kept.device_key
    where
        last_kept.kept_until is null
        or events.occurred_at > last_kept.kept_until

),

{% else %}

scoped_events as (

    select
        *,
        0 as sessions_before
    from events

),

{% endif %}

gaps as (

    select
        *,
        lag(occurred_at) over (
            partition by device_key
            order by occurred_at, event_id
        ) as previous_occurred_at
    from scoped_events

),

session_starts as (

    select
        *,
        case
            when previous_occurred_at is null then 1
            when {{ seconds_between('previous_occurred_at', 'occurred_at') }} > {{ timeout_seconds }} then 1
            else 0
        end as is_session_start
    from gaps

),

numbered as (

    select
        *,
        sessions_before + sum(is_session_start) over (
            partition by device_key
            order by occurred_at, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from session_starts

),

session_metrics as (

    select
        device_key,
        session_number,
        count(*) as event_count,
        sum(case when event_type = 'page' then 1 else 0 end) as page_view_count,
        min(occurred_at) as session_start_at,
        max(occurred_at) as session_end_at,
        max(loaded_at) as last_event_loaded_at,
        -- the landing event: the first event with a page, else the first event (event_id breaks ties: it is unique)
        {{ first_by(
            named_values(landing_columns),
            ['case when page_url is null then 1 else 0 end', 'occurred_at', 'event_id']
        ) }} as landing_event,
        -- the user id of the last event that carries one
        {{ last_by('user_id', ['case when user_id is null then 0 else 1 end', 'occurred_at', 'event_id']) }}
            as last_user_id
    from numbered
    group by device_key, session_number

),

final as (

    select
        -- keys
        {{ surrogate_key(['session_metrics.device_key', 'session_metrics.session_start_at']) }} as session_id,
        session_metrics.device_key,
        session_metrics.landing_event.anonymous_id,
        session_metrics.last_user_id as user_id,

        -- dimensions
        cast(session_metrics.session_number as integer) as session_number,
        session_metrics.landing_event.page_url as landing_page_url,
        session_metrics.landing_event.page_path as landing_page_path,
        session_metrics.landing_event.page_referrer as landing_page_referrer,
        session_metrics.landing_event.utm_source,
        session_metrics.landing_event.utm_medium,
        session_metrics.landing_event.utm_campaign,
        session_metrics.landing_event.utm_content,
        session_metrics.landing_event.utm_term,
        session_metrics.landing_event.channel,

        -- metrics
        cast(session_metrics.event_count as integer) as event_count,
        cast(session_metrics.page_view_count as integer) as page_view_count,
        cast(
            floor({{ seconds_between('session_metrics.session_start_at', 'session_metrics.session_end_at') }})
            as bigint
        ) as duration_seconds,

        -- timestamps
        session_metrics.session_start_at,
        session_metrics.session_end_at,
        session_metrics.last_event_loaded_at

    from session_metrics

)

{% if is_incremental() %}

select * from final
union all
select
    session_id,
    device_key,
    anonymous_id,
    user_id,
    session_number,
    landing_page_url,
    landing_page_path,
    landing_page_referrer,
    utm_source,
    utm_medium,
    utm_campaign,
    utm_content,
    utm_term,
    channel,
    event_count,
    page_view_count,
    duration_seconds,
    session_start_at,
    session_end_at,
    last_event_loaded_at
from kept_sessions

{% else %}

select * from final

{% endif %}
