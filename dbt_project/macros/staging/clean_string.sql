{#- Trimmed text, with empty strings turned into null (the only normalisation staging applies to text). -#}
{% macro clean_string(expr) -%}
    nullif(trim({{ expr }}), '')
{%- endmacro %}
