{#- Lower-cased host of an absolute URL ('https://www.Example.com:8080/a?b' -> 'www.example.com'); null otherwise. -#}
{% macro url_host(expr) -%}
    {{ return(adapter.dispatch('url_host', 'mos_pipelines')(expr)) }}
{%- endmacro %}

{% macro default__url_host(expr) -%}
    nullif(
        lower(
            {{ dbt.split_part(dbt.split_part(dbt.split_part(dbt.split_part(expr, "'/'", 3), "':'", 1), "'?'", 1), "'#'", 1) }}
        ),
        ''
    )
{%- endmacro %}

{% macro duckdb__url_host(expr) -%}
    nullif(lower(regexp_extract({{ expr }}, '^[A-Za-z][A-Za-z0-9+.-]*://([^/:?#@]+)', 1)), '')
{%- endmacro %}

{% macro spark__url_host(expr) -%}
    {#- Java regular expressions read this pattern as RE2 does; regexp_extract yields '' without a match. -#}
    nullif(lower(regexp_extract({{ expr }}, '^[A-Za-z][A-Za-z0-9+.-]*://([^/:?#@]+)', 1)), '')
{%- endmacro %}
