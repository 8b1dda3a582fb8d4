{#- Value of query parameter `name` in a URL ('https://x.example/a?b=1&c=2#f', 'c' -> '2'); null when absent or empty. -#}
{% macro url_parameter(expr, name) -%}
    {{ return(adapter.dispatch('url_parameter', 'mos_pipelines')(expr, name)) }}
{%- endmacro %}

{% macro default__url_parameter(expr, name) -%}
    case
        when {{ expr }} like '%?{{ name }}=%' or {{ expr }} like '%&{{ name }}=%'
            then nullif(
                {{ dbt.split_part(dbt.split_part(dbt.split_part(expr, "'" ~ name ~ "='", 2), "'&'", 1), "'#'", 1) }},
                ''
            )
    end
{%- endmacro %}

{% macro duckdb__url_parameter(expr, name) -%}
    nullif(regexp_extract({{ expr }}, '[?&]{{ name }}=([^&#]*)', 1), '')
{%- endmacro %}

{% macro spark__url_parameter(expr, name) -%}
    nullif(regexp_extract({{ expr }}, '[?&]{{ name }}=([^&#]*)', 1), '')
{%- endmacro %}
