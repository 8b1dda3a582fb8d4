{#-
    People created through the CRM API (ops.crm_store_people, copied from the operational store by the asset
    ops/crm_store_*), as contact records of the CRM system `mos_crm`, so identity matches them with what the
    warehouse already knows. Empty while there is no store.
-#}
{%- set people = optional_source('ops', 'crm_store_people', {
    'crm_record_id': 'varchar', 'first_name': 'varchar', 'last_name': 'varchar', 'email': 'varchar',
    'phone_e164': 'varchar', 'company': 'varchar', 'job_title': 'varchar', 'country_code': 'varchar',
    'city': 'varchar', 'postcode': 'varchar', 'birth_date': 'varchar', 'created_at': 'timestamp',
    'updated_at': 'timestamp',
}) %}

with

source as (

    select * from {{ people }} as people

),

country_codes as (

    select * from {{ ref('country_codes') }}

),

renamed as (

    select
        -- keys
        'mos_crm' as source_system,
        {{ clean_string('crm_record_id') }} as source_record_id,

        -- dimensions
        {{ clean_string('first_name') }} as first_name,
        {{ clean_string('last_name') }} as last_name,
        {{ full_name_of(clean_string('first_name'), clean_string('last_name')) }} as full_name,
        {{ clean_string('email') }} as email,
        {{ clean_string('phone_e164') }} as phone,
        {{ clean_string('company') }} as company,
        {{ clean_string('job_title') }} as job_title,
        {{ clean_string('country_code') }} as country_raw,
        {{ clean_string('city') }} as city,
        {{ clean_string('postcode') }} as postcode,
        {{ safe_cast(clean_string('birth_date'), 'date') }} as birth_date,

        -- timestamps
        created_at,
        updated_at,
        updated_at as loaded_at,

        -- lineage
        'crm_store' as source_file,
        cast(null as bigint) as source_line

    from source
    where crm_record_id is not null

),

{{ crm_contacts_latest_canonical() }}

select * from final
