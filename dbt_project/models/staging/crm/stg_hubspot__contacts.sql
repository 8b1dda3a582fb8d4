with

source as (

    select * from {{ source('crm', 'crm_contacts') }}
    where system = 'hubspot'
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

        -- dimensions
        {{ crm_record_field('First Name') }} as first_name,
        {{ crm_record_field('Last Name') }} as last_name,
        {{ crm_full_name('First Name', 'Last Name') }} as full_name,
        {{ crm_record_field('Email') }} as email,
        {{ crm_record_field('Phone Number') }} as phone,
        {{ crm_record_field('Company Name') }} as company,
        {{ crm_record_field('Job Title') }} as job_title,
        {{ crm_record_field('Country/Region') }} as country_raw,
        {{ crm_record_field('City') }} as city,
        {{ crm_record_field('Postal Code') }} as postcode,
        cast(null as date) as birth_date,

        -- timestamps
        {{ parse_timestamp(crm_record_field('Create Date'), '%Y-%m-%d %H:%M') }} as created_at,
        {{ parse_timestamp(crm_record_field('Last Modified Date'), '%Y-%m-%d %H:%M') }} as updated_at,
        _loaded_at as loaded_at,

        -- lineage
        _source_file as source_file,
        _line as source_line

    from source

),

{{ crm_contacts_latest_canonical() }}

select * from final
