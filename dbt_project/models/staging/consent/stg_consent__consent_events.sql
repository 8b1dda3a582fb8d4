{#- One row per event: a repeat of the whole key is a redelivery; the id is a hash of that key. -#}
{%- set event_key = ['subject', 'consent_purpose', 'consent_status', 'consent_source', 'occurred_at'] -%}

with

source as (

    select * from {{ source('consent', 'consent') }}
    where {{ not_erased(['subject']) }}

),

renamed as (

    select
        -- keys
        {{ clean_string('subject') }} as subject,

        -- dimensions
        {{ clean_string('purpose') }} as consent_purpose,
        {{ clean_string('status') }} as consent_status,
        {{ clean_string('region') }} as consent_region,
        {{ clean_string('source') }} as consent_source,

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
        {{ surrogate_key(event_key) }} as consent_event_id,
        subject,
        consent_purpose,
        consent_status,
        consent_region,
        consent_source,
        occurred_at,
        loaded_at,
        source_file,
        source_line
    from deduplicated

)

select * from final
