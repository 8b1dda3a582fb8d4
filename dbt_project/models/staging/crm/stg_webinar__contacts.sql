{#
    Webinar registrations carry one free-text `full_name`; first_name and last_name are left null
    here (splitting names is identity resolution's job, not staging's).
#}
{%- set registered_at = parse_timestamp(crm_record_field('registered_at'), '%m/%d/%Y %H:%M') -%}

with

source as (

    select * from {{ source('crm', 'crm_contacts') }}
    where system = 'webinar'
        and {{ not_erased(["system || ':' || source_record_id"]) }}

),

country_codes as (

    select * from {{ ref('country_codes') }}

),

renamed as (

    select
        -- keys
        system as source_system,
        {{ clean_string('source_record_id') }} as source_record_id,
        {{ crm_record_field('webinar_id') }} as webinar_id,

        -- dimensions
        cast(null as {{ dbt.type_string() }}) as first_name,
        cast(null as {{ dbt.type_string() }}) as last_name,
        {{ crm_record_field('full_name') }} as full_name,
        {{ crm_record_field('email') }} as email,
        {{ crm_record_field('phone') }} as phone,
        {{ crm_record_field('company') }} as company,
        cast(null as {{ dbt.type_string() }}) as job_title,
        {{ crm_record_field('country') }} as country_raw,
        cast(null as {{ dbt.type_string() }}) as city,
        cast(null as {{ dbt.type_string() }}) as postcode,
        cast(null as date) as birth_date,
        case lower({{ crm_record_field('attended') }})
            when 'true' then true
            when 't' then true
            when 'yes' then true
            when 'y' then true
            when '1' then true
            when 'false' then false
            when 'f' then false
            when 'no' then false
            when 'n' then false
            when '0' then false
        end as is_attended,

        -- timestamps
        {{ registered_at }} as created_at,
        cast(null as {{ dbt.type_timestamp() }}) as updated_at,
        {{ registered_at }} as registered_at,
        _loaded_at as loaded_at,

        -- lineage
        _source_file as source_file,
        _line as source_line

    from source

),

{{ crm_contacts_latest_canonical(
    extra_keys=['webinar_id'],
    extra_dimensions=['is_attended'],
    extra_timestamps=['registered_at']
) }}

select * from final
