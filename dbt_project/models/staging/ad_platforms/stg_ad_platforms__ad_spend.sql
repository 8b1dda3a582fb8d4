{#
    Ad spend rows of the most recent file that carries each day × platform × account × campaign ×
    ad group: a later export restates earlier figures, and all rows of that file for the key are kept
    (they are summed at the conformed grain in fct_ad_spend_daily).
#}
with

source as (

    select * from {{ source('ad_platforms', 'ad_spend') }}

),

renamed as (

    select
        -- keys
        {{ surrogate_key(['_file_hash', '_line']) }} as ad_spend_record_id,
        lower(coalesce({{ clean_string('platform') }}, {{ clean_string('platform_folder') }})) as platform,
        {{ clean_string('account_id') }} as account_id,
        {{ clean_string('campaign_id') }} as campaign_id,
        {{ clean_string('ad_group_id') }} as ad_group_id,

        -- dimensions
        {{ clean_string('campaign_name') }} as campaign_name,
        upper({{ clean_string('currency') }}) as currency,
        {{ clean_string('platform_folder') }} as platform_folder,

        -- metrics
        impressions,
        clicks,
        spend,
        conversions,
        conversions_value,

        -- dates and timestamps
        spend_date,
        _loaded_at as loaded_at,

        -- lineage
        _source_file as source_file,
        _line as source_line,
        _file_hash as file_hash

    from source

),

ranked as (

    select
        *,
        dense_rank() over (
            partition by spend_date, platform, account_id, campaign_id, ad_group_id
            order by loaded_at desc, source_file desc, file_hash desc
        ) as file_rank
    from renamed

),

final as (

    select
        ad_spend_record_id,
        platform,
        account_id,
        campaign_id,
        ad_group_id,
        campaign_name,
        currency,
        platform_folder,
        impressions,
        clicks,
        spend,
        conversions,
        conversions_value,
        spend_date,
        loaded_at,
        source_file,
        source_line
    from ranked
    where file_rank = 1

)

select * from final
