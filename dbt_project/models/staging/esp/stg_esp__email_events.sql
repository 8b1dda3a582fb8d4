{#- One row per event: a repeat of the whole key is a redelivery; the id is a hash of that key. -#}
{%- set event_key = ['message_id', 'email_event_type', 'occurred_at'] -%}

with

source as (

    select * from {{ source('esp', 'email') }}
    where {{ not_erased(['recipient_email']) }}

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

{{ first_loaded_copy(event_key) }},

final as (

    select
        {{ surrogate_key(event_key) }} as email_event_id,
        message_id,
        campaign_id,
        variant_id,
        recipient_email,
        email_event_type,
        occurred_at,
        loaded_at,
        source_file,
        source_line
    from deduplicated

)

select * from final
