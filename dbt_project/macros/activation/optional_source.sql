{#
    Reading a table that a Python asset writes, before that asset may have run.

    source_exists(source_name, table_name): whether the source's table is in the warehouse now
        (always false while dbt parses; models only branch on it at run time).
    optional_source(source_name, table_name, columns): a subquery over the source's listed columns
        when its table exists, else an empty subquery with the same columns and types. `columns` maps
        column name -> data type. source() is called either way, so dbt and Dagster keep the
        dependency (the model is built after that asset when both are in one run).
#}
{% macro source_exists(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set found = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) -%}
    {{ return(found is not none) }}
{%- endmacro %}


{% macro optional_source(source_name, table_name, columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if source_exists(source_name, table_name) -%}
        (select
            {%- for name in columns %}
            {{ name }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ relation }})
    {%- else -%}
        (select
            {%- for name, data_type in columns.items() %}
            {{ dbt.cast('null', data_type) }} as {{ name }}{{ "," if not loop.last }}
            {%- endfor %}
        where 1 = 0)
    {%- endif -%}
{%- endmacro %}
