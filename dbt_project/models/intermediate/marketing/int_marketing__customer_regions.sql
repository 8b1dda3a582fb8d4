{#
    One marketing region per customer (NA, EU, UK, APAC, LATAM), from the first source that knows:
      1. the golden record's country (dim_customers.country_code);
      2. the region of the customer's latest consent event (consent is captured per legal region);
      3. the country of the customer's most frequent event locale (`de-DE` -> DE), for customers
         known only from their devices.
    Countries map to regions through the country_codes seed. Customers none of them know are
    absent (the marts read them as `unknown`).
#}
with

customers as (

    select * from {{ ref('dim_customers') }}

),

identity_map as (

    select * from {{ ref('customer_identity_map') }}

),

consent_events as (

    select * from {{ ref('stg_consent__consent_events') }}

),

events as (

    select * from {{ ref('fct_events') }}

),

country_codes as (

    select * from {{ ref('country_codes') }}

),

iso_regions as (

    select distinct
        iso2,
        region
    from country_codes

),

golden_regions as (

    select
        customers.customer_id,
        iso_regions.region
    from customers
    inner join iso_regions on upper(customers.country_code) = iso_regions.iso2

),

consent_subjects as (

    select
        consent_events.consent_region as region,
        consent_events.occurred_at,
        consent_events.consent_event_id,
        coalesce(by_email.customer_id, by_user.customer_id) as customer_id
    from consent_events
    left join identity_map as by_email
        on by_email.node_key = 'email:' || {{ email_match_key(normalise_email('consent_events.subject')) }}
    left join identity_map as by_user
        on by_user.node_key = 'user:' || consent_events.subject

),

consent_regions as (

    select
        customer_id,
        upper(region) as region
    from consent_subjects
    where customer_id is not null and region is not null
    qualify row_number() over (
            partition by customer_id order by occurred_at desc, consent_event_id desc
        ) = 1

),

event_locales as (

    select
        identity_map.customer_id,
        lower({{ dbt.split_part('events.locale', "'-'", 2) }}) as locale_country,
        count(*) as event_count
    from events
    inner join identity_map
        on identity_map.node_key = case
                when events.anonymous_id is not null then 'anon:' || events.anonymous_id
                else 'user:' || events.user_id
            end
    where events.locale like '%-%'
    group by identity_map.customer_id, lower({{ dbt.split_part('events.locale', "'-'", 2) }})

),

locale_regions as (

    select
        event_locales.customer_id,
        country_codes.region
    from event_locales
    inner join country_codes on event_locales.locale_country = country_codes.alias
    qualify row_number() over (
            partition by event_locales.customer_id
            order by event_locales.event_count desc, event_locales.locale_country asc
        ) = 1

),

all_customers as (

    select customer_id from golden_regions
    union
    select customer_id from consent_regions
    union
    select customer_id from locale_regions

),

final as (

    select
        -- keys
        all_customers.customer_id,

        -- dimensions
        coalesce(golden_regions.region, consent_regions.region, locale_regions.region) as region,
        case
            when golden_regions.region is not null then 'golden_record_country'
            when consent_regions.region is not null then 'consent'
            else 'event_locale'
        end as region_source

    from all_customers
    left join golden_regions on all_customers.customer_id = golden_regions.customer_id
    left join consent_regions on all_customers.customer_id = consent_regions.customer_id
    left join locale_regions on all_customers.customer_id = locale_regions.customer_id

)

select * from final
