{#- Several values as one, for `min_by` / `max_by` (both engines have them): `sort_key(exprs)` orders rows by the
    expressions in turn, as `order by` would (no expression may be null: a null field compares differently on each
    engine); `named_values({'name': expr, ...})` carries several columns of the chosen row, read back as
    `<alias>.<name>`. One aggregate instead of a window ranked per group and a join back (fct_sessions). -#}
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
