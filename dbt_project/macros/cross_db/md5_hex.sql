{#- Lower-case hex MD5 of a text expression. -#}
{% macro md5_hex(expr) -%}
    {{ return(adapter.dispatch('md5_hex', 'mos_pipelines')(expr)) }}
{%- endmacro %}

{% macro default__md5_hex(expr) -%}
    {{ dbt.hash(expr) }}
{%- endmacro %}

{% macro duckdb__md5_hex(expr) -%}
    md5({{ expr }})
{%- endmacro %}
