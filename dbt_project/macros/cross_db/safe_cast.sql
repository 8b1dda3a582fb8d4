{#-
    Cast that yields null instead of failing on values that do not convert: dbt.safe_cast, with DuckDB's
    try_cast as its DuckDB implementation (dbt's default there is a plain cast, which fails). dbt_project.yml's
    `dispatch` puts this project first in dbt's search, so dbt.safe_cast finds duckdb__safe_cast here and every other
    adapter's own (Spark: a cast, null on failure with ANSI mode off, as dbt-spark sets it). No default__ here:
    it would shadow every adapter's own implementation.
-#}
{% macro safe_cast(expr, data_type) -%}
    {{ return(dbt.safe_cast(expr, data_type)) }}
{%- endmacro %}

{% macro duckdb__safe_cast(expr, data_type) -%}
    try_cast({{ expr }} as {{ data_type }})
{%- endmacro %}
