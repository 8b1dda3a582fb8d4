{#- Exact (fractional) seconds from `start_expr` to `end_expr`; negative when end is earlier. -#}
{% macro seconds_between(start_expr, end_expr) -%}
    {{ return(adapter.dispatch('seconds_between', 'mos_pipelines')(start_expr, end_expr)) }}
{%- endmacro %}

{% macro default__seconds_between(start_expr, end_expr) -%}
    (extract(epoch from {{ end_expr }}) - extract(epoch from {{ start_expr }}))
{%- endmacro %}

{% macro duckdb__seconds_between(start_expr, end_expr) -%}
    (epoch({{ end_expr }}) - epoch({{ start_expr }}))
{%- endmacro %}

{% macro spark__seconds_between(start_expr, end_expr) -%}
    (cast(unix_micros(cast({{ end_expr }} as timestamp)) - unix_micros(cast({{ start_expr }} as timestamp)) as double) / 1000000)
{%- endmacro %}
