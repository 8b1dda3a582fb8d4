{#-
    One row per event: a repeat of the whole key is a redelivery; the id is a hash of that key.
    Materialized, not a view: nine models and the experiment assets read it, and as a view each of them ran the
    deduplication window over every raw email event again (issue 20). Incremental by load
    (macros/incremental/new_loads.sql): a run adds the events it does not hold from the raw rows loaded since its
    latest load and those of the lookback window. An erasure deletes the person's rows from this table itself.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy=delete_insert_strategy(),
        unique_key='email_event_id',
        on_schema_change='fail',
    )
}}
{%- set event_key = ['message_id', 'email_event_type', 'occurred_at'] -%}

with

source as (

    select * from {{ source('esp', 'email') }}
    where
        {{ not_erased(['recipient_email']) }}
        and {{ loaded_since_last_build('_loaded_at', 'cast(occurred_at as date)') }}

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

select final.* from final
{%- if is_incremental() %}
-- an event the table holds keeps its row, the copy loaded first (a left join: see docs/DECISIONS.md, DuckDB)
left join {{ this }} as built on final.email_event_id = built.email_event_id
where built.email_event_id is null
{%- endif %}
