{{ config(meta={'dagster': {'ref': {'name': 'channel_mapping'}}}) }}
{#- Seed lookup keys must be trimmed and lower-case, or staging / channel mapping never matches them. -#}
with

country_aliases as (

    select
        'country_codes' as seed_name,
        alias as lookup_key
    from {{ ref('country_codes') }}

),

utm_keys as (

    select
        'channel_mapping' as seed_name,
        utm_source as lookup_key
    from {{ ref('channel_mapping') }}

    union all

    select
        'channel_mapping' as seed_name,
        utm_medium as lookup_key
    from {{ ref('channel_mapping') }}

),

lookup_keys as (

    select * from country_aliases
    union all
    select * from utm_keys

)

select * from lookup_keys
where lookup_key != lower(trim(lookup_key))
