{#
    Helpers shared by the CRM contact staging models (models/staging/crm/).

    crm_record_field(key): a CSV column of the landed record, trimmed, '' -> null.
    generic_crm_contact_fields(): the generic (canonical-column) mapping, used by
        stg_generic__contacts and by stg_crm__unmapped_contacts for any folder that has no
        staging model of its own. Expects the raw crm_contacts columns in scope.
#}
{% macro crm_record_field(key) -%}
    {{ clean_string(json_text('record', [key])) }}
{%- endmacro %}


{% macro generic_crm_contact_fields() -%}
        -- keys
        system as source_system,
        {{ clean_string('source_record_id') }} as source_record_id,

        -- dimensions
        {{ crm_record_field('first_name') }} as first_name,
        {{ crm_record_field('last_name') }} as last_name,
        {{ crm_record_field('full_name') }} as full_name,
        {{ crm_record_field('email') }} as email,
        {{ crm_record_field('phone') }} as phone,
        {{ crm_record_field('company') }} as company,
        {{ crm_record_field('job_title') }} as job_title,
        {{ crm_record_field('country') }} as country_raw,
        {{ crm_record_field('city') }} as city,
        {{ crm_record_field('postcode') }} as postcode,
        {{ safe_cast(crm_record_field('birth_date'), 'date') }} as birth_date,

        -- timestamps
        {{ parse_iso_timestamp(crm_record_field('created_at')) }} as created_at,
        {{ parse_iso_timestamp(crm_record_field('updated_at')) }} as updated_at,
        _loaded_at as loaded_at,

        -- lineage
        _source_file as source_file,
        _line as source_line
{%- endmacro %}


{#- Latest version of each record: later loads win, then the later updated_at, then the later file/line. -#}
{% macro crm_latest_version_order() -%}
    loaded_at desc, updated_at desc nulls last, source_file desc, source_line desc
{%- endmacro %}
