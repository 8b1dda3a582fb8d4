with

source as (

    select * from {{ source('crm', 'crm_contacts') }}
    where system = 'salesforce'

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
        {{ crm_record_field('Email') }} as email,
        {{ crm_record_field('Phone') }} as business_phone,
        {{ crm_record_field('MobilePhone') }} as mobile_phone,
        {{ crm_record_field('AccountName') }} as company,
        {{ crm_record_field('Title') }} as job_title,
        {{ crm_record_field('MailingCountry') }} as country_raw,
        {{ crm_record_field('MailingCity') }} as city,
        {{ crm_record_field('MailingPostalCode') }} as postcode,
        {{ safe_cast(crm_record_field('Birthdate'), 'date') }} as birth_date,

        -- timestamps
        {{ parse_iso_timestamp(crm_record_field('CreatedDate')) }} as created_at,
        {{ parse_iso_timestamp(crm_record_field('LastModifiedDate')) }} as updated_at,
        _loaded_at as loaded_at,

        -- lineage
        _source_file as source_file,
        _line as source_line

    from source

),

ranked as (

    select
        *,
        row_number() over (
            partition by source_record_id
            order by {{ crm_latest_version_order() }}
        ) as version_rank
    from renamed

),

latest as (

    select * from ranked
    where version_rank = 1

),

final as (

    select
        -- keys
        latest.source_system,
        latest.source_record_id,
        latest.source_system || ':' || latest.source_record_id as contact_record_key,

        -- dimensions
        latest.first_name,
        latest.last_name,
        case
            when latest.first_name is null then latest.last_name
            when latest.last_name is null then latest.first_name
            else latest.first_name || ' ' || latest.last_name
        end as full_name,
        latest.email,
        coalesce(latest.business_phone, latest.mobile_phone) as phone,
        latest.company,
        latest.job_title,
        country_codes.iso2 as country_code,
        latest.country_raw,
        latest.city,
        latest.postcode,
        latest.birth_date,
        latest.business_phone,
        latest.mobile_phone,

        -- timestamps
        latest.created_at,
        latest.updated_at,
        latest.loaded_at,

        -- lineage
        latest.source_file,
        latest.source_line

    from latest
    left join country_codes
        on lower(latest.country_raw) = country_codes.alias

)

select * from final
