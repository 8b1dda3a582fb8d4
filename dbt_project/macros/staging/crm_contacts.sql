{#
    Helpers shared by the CRM contact staging models (models/staging/crm/).

    crm_record_field(key): a CSV column of the landed record, trimmed, '' -> null.
    crm_full_name(first_name_key, last_name_key): first + last for systems that export no full
        name (either part alone when the other is missing); full_name_of(first, last) the same over
        two expressions.
    generic_crm_contact_fields(): the generic (canonical-column) mapping, used by
        stg_generic__contacts and by stg_crm__unmapped_contacts for any folder that has no
        staging model of its own. Expects the raw crm_contacts columns in scope.
    crm_contacts_latest_canonical(...): the CTEs every contact model ends with; see below.
#}
{% macro crm_record_field(key) -%}
    {{ clean_string(json_text('record', [key])) }}
{%- endmacro %}


{% macro crm_full_name(first_name_key, last_name_key) -%}
    {{ full_name_of(crm_record_field(first_name_key), crm_record_field(last_name_key)) }}
{%- endmacro %}


{% macro full_name_of(first_name, last_name) -%}
    case
            when {{ first_name }} is null then {{ last_name }}
            when {{ last_name }} is null then {{ first_name }}
            else {{ first_name }} || ' ' || {{ last_name }}
        end
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


{#
    crm_contacts_latest_canonical(extra_keys, extra_dimensions, extra_timestamps): the CTEs after a
    contact model's own `renamed` CTE, ending in `final` (the model then does `select * from final`):

    - ranked, latest: the latest version of each (source_system, source_record_id): later loads win,
      then the later updated_at, then the later file/line (latest_loaded_version);
    - final: the canonical contact columns in their fixed order (the order int_crm_contacts__unioned
      and _crm__models.yml list), with contact_record_key = `source_system:source_record_id` and
      country_code looked up from country_raw in the country_codes seed.

    Expects in scope: `renamed` with every canonical column except contact_record_key and
    country_code (a system without a value selects a typed null), and the import CTE `country_codes`.
    System-specific columns of `renamed` are passed by name and kept at the end of their group:
    extra_keys after contact_record_key, extra_dimensions after birth_date, extra_timestamps after
    updated_at (before loaded_at).
#}
{% macro crm_contacts_latest_canonical(extra_keys=[], extra_dimensions=[], extra_timestamps=[]) -%}
{{ latest_loaded_version(
    ['source_system', 'source_record_id'],
    order_by='loaded_at desc, updated_at desc nulls last, source_file desc, source_line desc'
) }},

final as (

    select
        -- keys
        latest.source_system,
        latest.source_record_id,
        latest.source_system || ':' || latest.source_record_id as contact_record_key,
        {%- for column in extra_keys %}
        latest.{{ column }},
        {%- endfor %}

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
        {%- for column in extra_dimensions %}
        latest.{{ column }},
        {%- endfor %}

        -- timestamps
        latest.created_at,
        latest.updated_at,
        {%- for column in extra_timestamps %}
        latest.{{ column }},
        {%- endfor %}
        latest.loaded_at,

        -- lineage
        latest.source_file,
        latest.source_line

    from latest
    left join country_codes
        on lower(latest.country_raw) = country_codes.alias

)
{%- endmacro %}
