with

source as (

    select * from {{ source('consent', 'consent') }}

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

ranked as (

    select
        *,
        {{ surrogate_key(['subject', 'consent_purpose', 'consent_status', 'consent_source', 'occurred_at']) }}
            as consent_event_id,
        row_number() over (
            partition by subject, consent_purpose, consent_status, consent_source, occurred_at
            order by loaded_at, source_file, source_line
        ) as load_rank
    from renamed

),

final as (

    select
        consent_event_id,
        subject,
        consent_purpose,
        consent_status,
        consent_region,
        consent_source,
        occurred_at,
        loaded_at,
        source_file,
        source_line
    from ranked
    where load_rank = 1

)

select * from final
