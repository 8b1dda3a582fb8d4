{#- Continuous quantile (linear interpolation between the two nearest values) of `expr`, `q` in [0, 1]. -#}
{% macro quantile_cont(expr, q) -%}
    {{ return(adapter.dispatch('quantile_cont', 'mos_pipelines')(expr, q)) }}
{%- endmacro %}

{% macro default__quantile_cont(expr, q) -%}
    percentile_cont({{ q }}) within group (order by {{ expr }})
{%- endmacro %}

{% macro duckdb__quantile_cont(expr, q) -%}
    quantile_cont({{ expr }}, {{ q }})
{%- endmacro %}

{% macro spark__quantile_cont(expr, q) -%}
    percentile({{ expr }}, {{ q }})
{%- endmacro %}
