{#
    Devices that landed on the site through a tracked email link. The ESP's click redirect appends a
    token to the landing URL (query parameter var mos__identity_email_click_token_param): the MD5 of
    the send's message id. Matching it to the send names the recipient, so the device can join the
    recipient's customer like a log-in would (edge `email_click` in int_identity__edge_candidates).

    One row per (anonymous_id, email_match_key). A device whose tokens name more than one recipient
    (a forwarded email, a shared computer) is kept here with its recipient_count but links nobody.
#}
{%- set token_param = var('mos__identity_email_click_token_param') %}

with

events as (

    select * from {{ ref('stg_segment__events') }}

),

email_events as (

    select * from {{ ref('stg_esp__email_events') }}

),

recipients as (

    select * from {{ ref('int_marketing__email_recipients') }}

),

landings as (

    select
        anonymous_id,
        {{ url_parameter('page_url', token_param) }} as click_token,
        occurred_at
    from events
    where
        anonymous_id is not null
        and page_url like '%{{ token_param }}=%'

),

sends as (

    -- a message id names one recipient; one whose events disagree on it names nobody
    select
        email_events.message_id,
        {{ md5_hex('email_events.message_id') }} as click_token,
        min(recipients.email_match_key) as email_match_key
    from email_events
    left join recipients on email_events.recipient_email = recipients.recipient_email
    where email_events.message_id is not null
    group by email_events.message_id
    -- one recipient: count(distinct) = 1 as min = max (nulls ignored by both), without a distinct aggregate's second
    -- pass over every email event
    having
        min(recipients.email_match_key) = max(recipients.email_match_key)

),

matched as (

    select
        landings.anonymous_id,
        sends.email_match_key,
        sends.message_id,
        landings.occurred_at
    from landings
    inner join sends
        on landings.click_token = sends.click_token

),

grouped as (

    select
        anonymous_id,
        email_match_key,
        count(*) as landing_count,
        count(distinct message_id) as message_count,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at
    from matched
    group by
        anonymous_id,
        email_match_key

),

final as (

    select
        -- keys
        anonymous_id,
        email_match_key,

        -- metrics
        landing_count,
        message_count,
        count(*) over (partition by anonymous_id) as recipient_count,

        -- timestamps
        first_seen_at,
        last_seen_at

    from grouped

)

select * from final
