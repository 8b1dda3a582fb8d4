{#- Contacts landed in crm_contacts/generic/ with the canonical column names. -#}
with

source as (

    select * from {{ source('crm', 'crm_contacts') }}
    where system = 'generic'

),

country_codes as (

    select * from {{ ref('country_codes') }}

),

renamed as (

    select
        {{ generic_crm_contact_fields() }}
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
        latest.full_name,
        latest.email,
        latest.phone,
        latest.company,
        latest.job_title,
        country_codes.iso2 as country_code,
        latest.country_raw,
        latest.city,
        latest.postcode,
        latest.birth_date,

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
