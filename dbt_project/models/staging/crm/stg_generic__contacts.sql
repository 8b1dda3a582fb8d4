{#- Contacts landed in crm_contacts/generic/ with the canonical column names. -#}
with

source as (

    select * from {{ source('crm', 'crm_contacts') }}
    where system = 'generic'
        and {{ not_erased(["system || ':' || source_record_id"]) }}

),

country_codes as (

    select * from {{ ref('country_codes') }}

),

renamed as (

    select
        {{ generic_crm_contact_fields() }}
    from source

),

{{ crm_contacts_latest_canonical() }}

select * from final
