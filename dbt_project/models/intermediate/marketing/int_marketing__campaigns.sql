{#
    One row per campaign (campaigns.csv has one row per campaign × variant): its channel, its
    target region (null when the campaign targets every region, `ALL`) and its name.
#}
with

campaign_variants as (

    select * from {{ ref('stg_marketing__campaign_variants') }}

),

campaigns as (

    select
        campaign_id,
        max(campaign_name) as campaign_name,
        max(lower(channel)) as channel,
        max(objective) as objective,
        max(upper(region)) as campaign_region
    from campaign_variants
    where campaign_id is not null
    group by campaign_id

),

final as (

    select
        -- keys
        campaign_id,

        -- dimensions
        campaign_name,
        channel,
        objective,
        case when campaign_region = 'ALL' then null else campaign_region end as campaign_region

    from campaigns

)

select * from final
