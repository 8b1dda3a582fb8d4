with

source as (

    select * from {{ source('marketing', 'campaigns') }}

),

renamed as (

    select
        -- keys
        {{ clean_string('campaign_id') }} as campaign_id,
        {{ clean_string('variant_id') }} as variant_id,

        -- dimensions
        {{ clean_string('name') }} as campaign_name,
        {{ clean_string('variant_name') }} as variant_name,
        {{ clean_string('channel') }} as channel,
        {{ clean_string('objective') }} as objective,
        {{ clean_string(json_text('_extra', 'region')) }} as region,
        is_holdout,

        -- metrics
        budget,
        cost_per_send,

        -- dates and timestamps
        start_date,
        end_date,
        _loaded_at as loaded_at,

        -- lineage
        _source_file as source_file,
        _line as source_line

    from source

),

{{ latest_loaded_version(['campaign_id', 'variant_id']) }},

final as (

    select
        {{ surrogate_key(['campaign_id', 'variant_id']) }} as campaign_variant_id,
        campaign_id,
        variant_id,
        campaign_name,
        variant_name,
        channel,
        objective,
        region,
        coalesce(is_holdout, false) as is_holdout,
        budget,
        cost_per_send,
        start_date,
        end_date,
        loaded_at,
        source_file,
        source_line
    from latest

)

select * from final
