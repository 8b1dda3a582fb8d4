{#
    Webinar registrations carry one free-text `full_name`; first_name and last_name are left null
    here (splitting names is identity resolution's job, not staging's).
#}
with

source as (

    select * from {{ source('crm', 'crm_contacts') }}
    where system = 'webinar'

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
        {{ crm_record_field('full_name') }} as full_name,
        {{ crm_record_field('email') }} as email,
        {{ crm_record_field('phone') }} as phone,
        {{ crm_record_field('company') }} as company,
        {{ crm_record_field('country') }} as country_raw,
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
        {{ parse_timestamp(crm_record_field('registered_at'), '%m/%d/%Y %H:%M') }} as registered_at,
        cast(null as {{ dbt.type_timestamp() }}) as updated_at,
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
        latest.webinar_id,

        -- dimensions
        cast(null as {{ dbt.type_string() }}) as first_name,
        cast(null as {{ dbt.type_string() }}) as last_name,
        latest.full_name,
        latest.email,
        latest.phone,
        latest.company,
        cast(null as {{ dbt.type_string() }}) as job_title,
        country_codes.iso2 as country_code,
        latest.country_raw,
        cast(null as {{ dbt.type_string() }}) as city,
        cast(null as {{ dbt.type_string() }}) as postcode,
        cast(null as date) as birth_date,
        latest.is_attended,

        -- timestamps
        latest.registered_at as created_at,
        latest.updated_at,
        latest.registered_at,
        latest.loaded_at,

        -- lineage
        latest.source_file,
        latest.source_line

    from latest
    left join country_codes
        on lower(latest.country_raw) = country_codes.alias

)

select * from final
