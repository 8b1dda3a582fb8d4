{#
    Deterministic key from several columns: md5 of the values cast to text, joined with '-', with
    nulls replaced by a marker so that (null, 'a') and ('', 'a') differ. Same idea as
    dbt_utils.generate_surrogate_key, written here because hub packages are not installed.
#}
{% macro surrogate_key(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '_mos_null_')") -%}
    {%- endfor -%}
    {{ md5_hex(parts | join(" || '-' || ")) }}
{%- endmacro %}
