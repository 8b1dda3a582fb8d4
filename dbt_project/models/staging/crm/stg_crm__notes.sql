with

source as (

    select * from {{ source('crm', 'crm_notes') }}
    where {{ not_erased(['subject']) }}

),

renamed as (

    select
        -- keys
        {{ clean_string('note_id') }} as note_id,
        {{ clean_string('subject') }} as subject,

        -- dimensions
        {{ clean_string('author') }} as author,
        {{ clean_string('text') }} as note_text,

        -- timestamps
        created_at,
        _loaded_at as loaded_at,

        -- lineage
        _source_file as source_file,
        _line as source_line

    from source

),

{{ latest_loaded_version(['note_id']) }},

final as (

    select
        note_id,
        subject,
        author,
        note_text,
        created_at,
        loaded_at,
        source_file,
        source_line
    from latest

)

select * from final
