{#
    The identifiers Segment events carry, one row per distinct (anonymous_id, user_id, email match
    key of identify traits) with when and how often they were seen together: the events side of the
    identity graph, read once from the events.
#}
with

events as (

    select * from {{ ref('stg_segment__events') }}

),

identifiers as (

    select
        anonymous_id,
        user_id,
        {{ normalise_email(json_text('traits', 'email')) }} as traits_email_normalised,
        event_type,
        occurred_at
    from events
    where anonymous_id is not null or user_id is not null

),

grouped as (

    select
        anonymous_id,
        user_id,
        {{ email_match_key('traits_email_normalised') }} as email_match_key,
        count(*) as event_count,
        sum(case when event_type = 'identify' then 1 else 0 end) as identify_count,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at
    from identifiers
    group by
        anonymous_id,
        user_id,
        {{ email_match_key('traits_email_normalised') }}

),

final as (

    select
        -- keys
        {{ surrogate_key(['anonymous_id', 'user_id', 'email_match_key']) }} as segment_identity_key,
        anonymous_id,
        user_id,
        email_match_key,

        -- metrics
        event_count,
        identify_count,

        -- timestamps
        first_seen_at,
        last_seen_at

    from grouped

)

select * from final
