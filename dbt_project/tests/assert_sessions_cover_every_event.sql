{{ config(meta={'dagster': {'ref': {'name': 'fct_sessions'}}}) }}
{#- Every event of fct_events is in exactly one session: per device, session event counts add up. -#}
with

event_counts as (

    select
        device_key,
        count(*) as event_count
    from {{ ref('fct_events') }}
    group by device_key

),

session_counts as (

    select
        device_key,
        sum(event_count) as event_count,
        count(*) as session_count,
        max(session_number) as max_session_number
    from {{ ref('fct_sessions') }}
    group by device_key

),

compared as (

    select
        coalesce(event_counts.device_key, session_counts.device_key) as device_key,
        event_counts.event_count as events_in_fct_events,
        session_counts.event_count as events_in_sessions,
        session_counts.session_count,
        session_counts.max_session_number
    from event_counts
    full outer join session_counts
        on event_counts.device_key = session_counts.device_key

)

select * from compared
where
    events_in_fct_events is null
    or events_in_sessions is null
    or events_in_fct_events != events_in_sessions
    or session_count != max_session_number
