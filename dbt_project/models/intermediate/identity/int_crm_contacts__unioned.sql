{#
    Every CRM contact record of every source system in the canonical shape, one row per
    (source_system, source_record_id): the systems with their own staging model plus, through the
    generic mapping, any bring-your-own crm_contacts/<system>/ folder (stg_crm__unmapped_contacts), and the people
    created through the CRM API (stg_crm_store__contacts, system `mos_crm`).
    To give a new system its own mapping, add a stg_<system>__contacts model, list it below and add
    its name to var mos__crm_mapped_systems.
#}
{%- set contact_models = [
    'stg_hubspot__contacts',
    'stg_salesforce__contacts',
    'stg_webinar__contacts',
    'stg_generic__contacts',
    'stg_crm__unmapped_contacts',
    'stg_crm_store__contacts',
] %}

{%- set canonical_columns = [
    'source_system',
    'source_record_id',
    'contact_record_key',
    'first_name',
    'last_name',
    'full_name',
    'email',
    'phone',
    'company',
    'job_title',
    'country_code',
    'country_raw',
    'city',
    'postcode',
    'birth_date',
    'created_at',
    'updated_at',
    'loaded_at',
] %}

with

{% for contact_model in contact_models %}
{{ contact_model }} as (

    select * from {{ ref(contact_model) }}

),

{% endfor %}
unioned as (

    {% for contact_model in contact_models %}
    select {{ canonical_columns | join(', ') }}
    from {{ contact_model }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select * from unioned

)

select * from final
