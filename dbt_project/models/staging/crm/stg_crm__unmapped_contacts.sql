{#
    Contacts of every crm_contacts/<system>/ folder that has no staging model of its own (systems not in
    var mos__crm_mapped_systems), read with the generic canonical-column mapping so that a
    bring-your-own folder flows into int_crm_contacts__unioned instead of being dropped. The test
    assert_crm_systems_are_mapped warns while any such rows exist.
#}
with

source as (

    select * from {{ source('crm', 'crm_contacts') }}
    where coalesce(system, '') not in ({{ quoted_list(var('mos__crm_mapped_systems')) }})

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
            partition by source_system, source_record_id
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
