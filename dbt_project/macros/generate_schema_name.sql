{#
    Relations live in schemas named exactly as configured (`staging`, `intermediate`, `marts`, ...),
    not `<target schema>_<custom schema>` as dbt does by default. Models without a custom schema
    fall back to the target schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
