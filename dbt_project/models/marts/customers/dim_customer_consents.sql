{#-
    Current consent of every customer for every purpose. The latest consent event of any of the
    customer's subjects (emails, user ids) decides; ties at the same instant go to the most
    restrictive status (revoked, then denied, then granted). Without an event, the regional default
    applies: regions in var mos__consent_opt_in_regions are never consented by default; other regions
    follow seed consent_regional_defaults; a region or purpose without a default row is not consented.
-#}
{%- set purposes = ['email_marketing', 'ad_personalization', 'analytics'] -%}
{%- set opt_in_regions = var('mos__consent_opt_in_regions') -%}

with

customers as (

    select * from {{ ref('dim_customers') }}

),

regions as (

    select * from {{ ref('int_customers__regions') }}

),

consent_events as (

    select * from {{ ref('int_consent_events__mapped') }}

),

regional_defaults as (

    select * from {{ ref('consent_regional_defaults') }}

),

purposes as (

    {%- for purpose in purposes %}
    select '{{ purpose }}' as consent_purpose
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

ranked_events as (

    select
        *,
        row_number() over (
            partition by customer_id, consent_purpose
            order by
                occurred_at desc,
                case consent_status when 'revoked' then 0 when 'denied' then 1 else 2 end,
                consent_event_id desc
        ) as event_rank
    from consent_events

),

latest_events as (

    select *
    from ranked_events
    where event_rank = 1

),

defaults as (

    select
        upper(region) as region,
        consent_purpose,
        lower(default_status) as default_status
    from regional_defaults

),

grid as (

    select
        customers.customer_id,
        purposes.consent_purpose,
        coalesce(regions.region, 'unknown') as region
    from customers
    cross join purposes
    left join regions
        on customers.customer_id = regions.customer_id

),

decided as (

    select
        grid.customer_id,
        grid.consent_purpose,
        grid.region,
        case
            when latest_events.consent_event_id is not null then latest_events.consent_status
            {%- if opt_in_regions | length > 0 %}
            when grid.region in ({{ quoted_list(opt_in_regions) }}) then 'denied'
            {%- endif %}
            when defaults.default_status = 'granted' then 'granted'
            else 'denied'
        end as consent_status,
        case
            when latest_events.consent_event_id is not null then 'event'
            else 'regional_default'
        end as decided_by,
        latest_events.consent_event_id as source_event_id,
        latest_events.subject as source_subject,
        latest_events.consent_source as source,  -- noqa: RF04
        latest_events.consent_region as source_region,
        latest_events.occurred_at
    from grid
    left join latest_events
        on
            grid.customer_id = latest_events.customer_id
            and grid.consent_purpose = latest_events.consent_purpose
    left join defaults
        on
            grid.region = defaults.region
            and grid.consent_purpose = defaults.consent_purpose

),

final as (

    select
        -- keys
        customer_id,
        consent_purpose as purpose,

        -- dimensions
        region,
        consent_status as status,
        consent_status = 'granted' as is_consented,
        decided_by,
        source_event_id,
        source_subject,
        source,  -- noqa: RF04
        source_region,

        -- timestamps
        occurred_at

    from decided

)

select * from final
