{#
    One row per recipient address of the ESP's events, as the events write it: the address normalised
    (normalise_email) and its identity match key (email_match_key). The models over email events join this on
    recipient_email instead of normalising the address of each of millions of events (issue 20: the key's
    expression, evaluated per event in a join condition, was most of fct_variant_performance's time).
#}
{{ config(materialized='table') }}
with

email_events as (

    select * from {{ ref('stg_esp__email_events') }}

),

addresses as (

    select distinct recipient_email
    from email_events
    where recipient_email is not null

),

normalised as (

    select
        recipient_email,
        {{ normalise_email('recipient_email') }} as email
    from addresses

),

final as (

    select
        -- keys
        recipient_email,
        email,
        {{ email_match_key('email') }} as email_match_key
    from normalised

)

select * from final
