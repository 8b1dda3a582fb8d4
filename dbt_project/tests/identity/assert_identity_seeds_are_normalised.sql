{{ config(meta={'dagster': {'ref': {'name': 'identity_blocked_values'}}}) }}
{#-
    The identity seeds are matched on normalised values: nicknames in the normalise_name form and
    blocked emails in their match-key form. A row written otherwise would silently never match.
-#}
with

nicknames as (

    select
        'nicknames' as seed_name,
        nickname as seed_value,
        {{ normalise_name('nickname') }} as expected_value
    from {{ ref('nicknames') }}

    union all

    select
        'nicknames' as seed_name,
        canonical_name as seed_value,
        {{ normalise_name('canonical_name') }} as expected_value
    from {{ ref('nicknames') }}

),

blocked_emails as (

    select
        'identity_blocked_values' as seed_name,
        value as seed_value,
        {{ email_match_key(normalise_email('value')) }} as expected_value
    from {{ ref('identity_blocked_values') }}
    where identifier_type = 'email'

),

seed_values as (

    select * from nicknames
    union all
    select * from blocked_emails

)

select * from seed_values
where expected_value is null or seed_value != expected_value
