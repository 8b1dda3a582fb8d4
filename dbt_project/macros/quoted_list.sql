{#- A list of values as SQL string literals for an `in (...)` list: ['a', "b'c"] -> 'a', 'b''c' (Spark: 'b\'c'). -#}
{% macro quoted_list(values) -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}
        {%- do quoted.append("'" ~ dbt.escape_single_quotes(value | string) ~ "'") -%}
    {%- endfor -%}
    {{ quoted | join(', ') }}
{%- endmacro %}
