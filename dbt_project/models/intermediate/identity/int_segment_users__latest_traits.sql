{#-
    The traits of each user's latest identify call that carried any (name, email, company): what the
    product knows about a person, one candidate record for dim_customers' survivorship rules.
-#}
with

events as (

    select * from {{ ref('stg_segment__events') }}

),

identify_traits as (

    select
        user_id,
        {{ clean_string(json_text('traits', 'first_name')) }} as first_name,
        {{ clean_string(json_text('traits', 'last_name')) }} as last_name,
        {{ normalise_email(json_text('traits', 'email')) }} as email_normalised,
        {{ clean_string(json_text('traits', 'company')) }} as company,
        occurred_at,
        event_id
    from events
    where
        event_type = 'identify'
        and user_id is not null
        and traits is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by user_id
            order by occurred_at desc, event_id desc
        ) as identify_rank
    from identify_traits
    where coalesce(first_name, last_name, email_normalised, company) is not null

),

final as (

    select
        -- keys
        user_id,

        -- dimensions
        first_name,
        last_name,
        email_normalised,
        {{ email_match_key('email_normalised') }} as email_match_key,
        company,

        -- timestamps
        occurred_at as identified_at

    from ranked
    where identify_rank = 1

)

select * from final
