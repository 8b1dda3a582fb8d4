{#-
    The incremental strategy of a model that replaces its rows by key: `delete+insert`. Spark's parquet tables have
    neither delete nor merge (Delta, Iceberg and Hudi do): there the model is rebuilt whole, so a Spark build runs
    with --full-refresh (`mos spark build` does) and any other build is refused with the reason, rather than append
    rows twice.
        config(materialized='incremental', incremental_strategy=delete_insert_strategy(), unique_key=...)
-#}
{% macro delete_insert_strategy() -%}
    {{ return(adapter.dispatch('delete_insert_strategy', 'mos_pipelines')()) }}
{%- endmacro %}

{% macro default__delete_insert_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro spark__delete_insert_strategy() -%}
    {%- if execute and not flags.FULL_REFRESH -%}
        {{ exceptions.raise_compiler_error(
            "incremental delete+insert on Spark parquet tables: build with --full-refresh (mos spark build does)"
        ) }}
    {%- endif -%}
    {{ return('append') }}
{%- endmacro %}
