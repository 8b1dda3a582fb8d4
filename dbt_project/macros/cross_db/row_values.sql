{#- One row's values per group, as an aggregate instead of a window ranked per group and a join back (fct_sessions):
    `first_by(value, exprs)` / `last_by(value, exprs)` is `value` at the row that orders first / last by the
    expressions in turn, as `order by` would (no expression may be null: a null field compares differently inside a
    struct on each engine; the value may be); `named_values({'name': expr, ...})` carries several columns of that
    row, read back as `<alias>.<name>`. DuckDB and Spark both have min_by / max_by and order structs field by field.
-#}
{% macro first_by(value, exprs) -%}
    min_by({{ value }}, {{ sort_key(exprs) }})
{%- endmacro %}

{% macro last_by(value, exprs) -%}
    max_by({{ value }}, {{ sort_key(exprs) }})
{%- endmacro %}

{% macro sort_key(exprs) -%}
    {{ return(adapter.dispatch('sort_key', 'mos_pipelines')(exprs)) }}
{%- endmacro %}

{% macro default__sort_key(exprs) -%}
    row({{ exprs | join(', ') }})
{%- endmacro %}

{% macro spark__sort_key(exprs) -%}
    struct({{ exprs | join(', ') }})
{%- endmacro %}


{% macro named_values(values) -%}
    {{ return(adapter.dispatch('named_values', 'mos_pipelines')(values)) }}
{%- endmacro %}

{% macro default__named_values(values) -%}
    struct_pack({% for name, expr in values.items() %}{{ name }} := {{ expr }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro spark__named_values(values) -%}
    named_struct({% for name, expr in values.items() %}'{{ name }}', {{ expr }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}
