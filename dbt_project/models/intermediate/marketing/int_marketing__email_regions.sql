{#
    Region of an email address seen in the ESP, for recipients: the region of the customer the
    address belongs to (int_marketing__customer_regions via dim_customer_identity_map), else the region
    of the latest consent event whose subject is that address (people who only ever received email
    are in no identity source but did give or refuse consent; the consent subjects come keyed from
    int_identity__contact_subjects). One row per email match key.
    A table, not a view: touchpoints, channel and variant results read it. The addresses come keyed from
    int_marketing__email_recipients (one row per address, not per event).
#}
{{ config(materialized='table') }}
with

email_recipients as (

    select * from {{ ref('int_marketing__email_recipients') }}

),

consent_events as (

    select * from {{ ref('stg_consent__consent_events') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

customer_regions as (

    select * from {{ ref('int_marketing__customer_regions') }}

),

recipients as (

    -- each distinct address keyed once (int_marketing__email_recipients), not each event
    select distinct email_match_key
    from email_recipients

),

contact_subjects as (

    select * from {{ ref('int_identity__contact_subjects') }}

),

consent_regions_ranked as (

    -- the subject's email match key as int_identity__contact_subjects keyed it, once per subject: its node key is
    -- 'email:' and that key for an address with one (computing the key here, per consent event, was 7 s of CPU)
    select
        substr(contact_subjects.node_key, length('email:') + 1) as email_match_key,
        upper(consent_events.consent_region) as region,
        row_number() over (
            partition by contact_subjects.node_key
            order by consent_events.occurred_at desc, consent_events.consent_event_id desc
        ) as row_rank
    from consent_events
    inner join contact_subjects on consent_events.subject = contact_subjects.subject
    where consent_events.consent_region is not null and contact_subjects.node_key like 'email:%'

),

consent_regions as (

    select
        email_match_key,
        region
    from consent_regions_ranked
    where row_rank = 1

),

final as (

    select
        -- keys
        recipients.email_match_key,
        identity_map.customer_id,

        -- dimensions
        coalesce(customer_regions.region, consent_regions.region) as region,
        case
            when customer_regions.region is not null then 'customer'
            when consent_regions.region is not null then 'consent'
        end as region_source

    from recipients
    left join identity_map on identity_map.node_key = 'email:' || recipients.email_match_key
    left join customer_regions on identity_map.customer_id = customer_regions.customer_id
    left join consent_regions on recipients.email_match_key = consent_regions.email_match_key
    where recipients.email_match_key is not null

)

select * from final
