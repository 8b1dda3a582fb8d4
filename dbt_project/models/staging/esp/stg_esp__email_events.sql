with

source as (

    select * from {{ source('esp', 'email') }}

),

renamed as (

    select
        -- keys
        {{ clean_string('message_id') }} as message_id,
        {{ clean_string('campaign_id') }} as campaign_id,
        {{ clean_string('variant_id') }} as variant_id,

        -- dimensions
        {{ clean_string('recipient_email') }} as recipient_email,
        {{ clean_string('event') }} as email_event_type,

        -- timestamps
        occurred_at,
        _loaded_at as loaded_at,

        -- lineage
        _source_file as source_file,
        _line as source_line

    from source

),

ranked as (

    select
        *,
        {{ surrogate_key(['message_id', 'email_event_type', 'occurred_at']) }} as email_event_id,
        row_number() over (
            partition by message_id, email_event_type, occurred_at
            order by loaded_at, source_file, source_line
        ) as load_rank
    from renamed

),

final as (

    select
        email_event_id,
        message_id,
        campaign_id,
        variant_id,
        recipient_email,
        email_event_type,
        occurred_at,
        loaded_at,
        source_file,
        source_line
    from ranked
    where load_rank = 1

)

select * from final
