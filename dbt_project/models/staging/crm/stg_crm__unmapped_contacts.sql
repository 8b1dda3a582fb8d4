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
