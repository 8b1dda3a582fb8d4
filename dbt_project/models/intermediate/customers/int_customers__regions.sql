{#-
    Each customer's country and marketing region, from the best evidence available:
    1. the region of the customer's latest consent event (the legal region consent was collected under),
    2. the golden country (dim_customers.country_code) through seed country_codes,
    3. the country part of the latest event locale ('en-GB' -> GB) through seed country_codes,
    else 'unknown' (which no consent default grants).
    A table, not a view: consent, features and every marketing mart read it.
-#}
{{ config(materialized='table') }}
with

customers as (

    select * from {{ ref('dim_customers') }}

),

consent_events as (

    select * from {{ ref('int_consent_events__mapped') }}

),

events as (

    select * from {{ ref('int_customer_events__mapped') }}

),

country_codes as (

    select * from {{ ref('country_codes') }}

),

country_regions as (

    select distinct
        iso2,
        region
    from country_codes

),

consent_regions as (

    -- the latest (then largest id) consent event's region: one aggregate, not a window over every event
    select
        customer_id,
        {{ last_by('upper(consent_region)', ['occurred_at', 'consent_event_id']) }} as region
    from consent_events
    where consent_region is not null
    group by customer_id

),

locale_countries as (

    select
        customer_id,
        {{ last_by(
            'upper(' ~ dbt.split_part(dbt.replace('locale', "'_'", "'-'"), "'-'", 2) ~ ')',
            ['occurred_at', 'event_id']
        ) }} as country_code
    from events
    where {{ dbt.replace('locale', "'_'", "'-'") }} like '%-%'  -- 'en_US' or 'en-US'
    group by customer_id

),

final as (

    select
        -- keys
        customers.customer_id,

        -- dimensions
        coalesce(customers.country_code, locale_countries.country_code) as country_code,
        coalesce(
            consent_regions.region, golden_regions.region, locale_regions.region, 'unknown'
        ) as region,
        case
            when consent_regions.region is not null then 'consent_event'
            when golden_regions.region is not null then 'golden_country'
            when locale_regions.region is not null then 'event_locale'
            else 'unknown'
        end as region_source

    from customers
    left join consent_regions
        on customers.customer_id = consent_regions.customer_id
    left join locale_countries
        on customers.customer_id = locale_countries.customer_id
    left join country_regions as golden_regions
        on customers.country_code = golden_regions.iso2
    left join country_regions as locale_regions
        on locale_countries.country_code = locale_regions.iso2

)

select * from final
