{#- A list of values as SQL string literals for an `in (...)` list: ['a', "b'c"] -> 'a', 'b''c'. -#}
{% macro quoted_list(values) -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}
        {%- do quoted.append("'" ~ (value | string | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {{ quoted | join(', ') }}
{%- endmacro %}
