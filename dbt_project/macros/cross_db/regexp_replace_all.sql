{#-
    Replace every match of a regular expression. Keep patterns to what POSIX and RE2 share
    (bracket expressions, [[:punct:]], [[:space:]], + and *) so they mean the same everywhere.
-#}
{% macro regexp_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'mos_pipelines')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
    {#- Snowflake, BigQuery, Spark and Databricks replace every match by default. -#}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{% macro duckdb__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{% macro postgres__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{% macro spark__regexp_replace_all(expr, pattern, replacement) -%}
    {#- Java regular expressions have no POSIX bracket classes: [:punct:] and [:space:] become \p{Punct} and \s
        (ASCII, as RE2's); the backslash is doubled for Spark's string literal, where a quote is \' (not ''). -#}
    {%- set java = pattern | replace('[:punct:]', '\\\\p{Punct}') | replace('[:space:]', '\\\\s') | replace("''", "\\'") -%}
    {%- if '[:' in java -%}
        {{ exceptions.raise_compiler_error("regexp_replace_all on Spark: translate the POSIX class in " ~ pattern) }}
    {%- endif -%}
    regexp_replace({{ expr }}, '{{ java }}', '{{ replacement }}')
{%- endmacro %}
