{#
    Materialized, not a view like the other staging models: seven models read it, and as a view each of them ran the
    deduplication window and the JSON parsing over every raw event again (issue 20; docs/DECISIONS.md).
    Incremental by load (macros/incremental/new_loads.sql): a run adds the message ids it does not hold from the raw
    rows loaded since its latest load and those of the lookback window. An erasure deletes the person's rows from
    this table itself (crm/erasure.py); later loads are filtered here.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=delete_insert_strategy(),
        unique_key='event_id',
        on_schema_change='fail',
    )
}}
{%- set context_paths = [
    'campaign.source', 'campaign.medium', 'campaign.name', 'campaign.content', 'campaign.term',
    'page.url', 'page.path', 'page.referrer', 'page.title', 'locale', 'ip',
] %}
{%- set properties_paths = ['url', 'path', 'referrer', 'title'] %}

with

source as (

    select * from {{ source('segment', 'events') }}
    where
        {{ not_erased(['anonymous_id', 'user_id']) }}
        and {{ loaded_since_last_build('_loaded_at', 'cast(event_timestamp as date)') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by {{ clean_string('message_id') }}
            order by _loaded_at, _source_file, _line
        ) as load_rank
    from source

),

deduplicated as (

    select
        ranked.*,
        -- parse each JSON column once, then read its fields (see macro json_parse_object)
        {{ json_parse_object('ranked.context', context_paths) }} as context_fields,
        {{ json_parse_object('ranked.properties', properties_paths) }} as properties_fields
    from ranked
    {%- if is_incremental() %}
    -- a message id the table holds keeps its row, the copy loaded first (a left join: see docs/DECISIONS.md, DuckDB)
    left join {{ this }} as built on {{ clean_string('ranked.message_id') }} = built.event_id
    where ranked.load_rank = 1 and built.event_id is null
    {%- else %}
    where ranked.load_rank = 1
    {%- endif %}

),

renamed as (

    select
        -- keys
        {{ clean_string('message_id') }} as event_id,
        {{ clean_string('anonymous_id') }} as anonymous_id,
        {{ clean_string('user_id') }} as user_id,

        -- dimensions
        {{ clean_string('type') }} as event_type,
        {{ clean_string('event') }} as event_name,
        {{ clean_string(json_parsed_text('context_fields', 'campaign.source')) }} as utm_source,
        {{ clean_string(json_parsed_text('context_fields', 'campaign.medium')) }} as utm_medium,
        {{ clean_string(json_parsed_text('context_fields', 'campaign.name')) }} as utm_campaign,
        {{ clean_string(json_parsed_text('context_fields', 'campaign.content')) }} as utm_content,
        {{ clean_string(json_parsed_text('context_fields', 'campaign.term')) }} as utm_term,
        coalesce(
            {{ clean_string(json_parsed_text('context_fields', 'page.url')) }},
            {{ clean_string(json_parsed_text('properties_fields', 'url')) }}
        ) as page_url,
        coalesce(
            {{ clean_string(json_parsed_text('context_fields', 'page.path')) }},
            {{ clean_string(json_parsed_text('properties_fields', 'path')) }}
        ) as page_path,
        coalesce(
            {{ clean_string(json_parsed_text('context_fields', 'page.referrer')) }},
            {{ clean_string(json_parsed_text('properties_fields', 'referrer')) }}
        ) as page_referrer,
        coalesce(
            {{ clean_string(json_parsed_text('context_fields', 'page.title')) }},
            {{ clean_string(json_parsed_text('properties_fields', 'title')) }}
        ) as page_title,
        {{ clean_string(json_parsed_text('context_fields', 'locale')) }} as locale,  -- noqa: RF04
        {{ clean_string(json_parsed_text('context_fields', 'ip')) }} as ip_address,
        properties,
        traits,
        context,

        -- timestamps
        event_timestamp as occurred_at,
        _loaded_at as loaded_at,

        -- lineage
        _source_file as source_file,
        _line as source_line

    from deduplicated

),

final as (

    select
        -- keys
        event_id,
        anonymous_id,
        user_id,

        -- dimensions
        event_type,
        event_name,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        page_url,
        page_path,
        page_referrer,
        page_title,
        {{ url_host('page_url') }} as page_host,
        {{ url_host('page_referrer') }} as referrer_host,
        locale,
        ip_address,
        properties,
        traits,
        context,

        -- timestamps
        occurred_at,
        loaded_at,

        -- lineage
        source_file,
        source_line

    from renamed

)

select * from final
