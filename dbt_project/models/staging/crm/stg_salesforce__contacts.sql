with

source as (

    select * from {{ source('crm', 'crm_contacts') }}
    where system = 'salesforce'
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
        {{ crm_record_field('FirstName') }} as first_name,
        {{ crm_record_field('LastName') }} as last_name,
        {{ crm_full_name('FirstName', 'LastName') }} as full_name,
        {{ crm_record_field('Email') }} as email,
        coalesce({{ crm_record_field('Phone') }}, {{ crm_record_field('MobilePhone') }}) as phone,
        {{ crm_record_field('AccountName') }} as company,
        {{ crm_record_field('Title') }} as job_title,
        {{ crm_record_field('MailingCountry') }} as country_raw,
        {{ crm_record_field('MailingCity') }} as city,
        {{ crm_record_field('MailingPostalCode') }} as postcode,
        {{ safe_cast(crm_record_field('Birthdate'), 'date') }} as birth_date,
        {{ crm_record_field('Phone') }} as business_phone,
        {{ crm_record_field('MobilePhone') }} as mobile_phone,

        -- timestamps
        {{ parse_iso_timestamp(crm_record_field('CreatedDate')) }} as created_at,
        {{ parse_iso_timestamp(crm_record_field('LastModifiedDate')) }} as updated_at,
        _loaded_at as loaded_at,

        -- lineage
        _source_file as source_file,
        _line as source_line

    from source

),

{{ crm_contacts_latest_canonical(extra_dimensions=['business_phone', 'mobile_phone']) }}

select * from final
