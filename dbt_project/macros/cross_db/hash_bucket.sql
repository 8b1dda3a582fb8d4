{#- A deterministic number in [0, 1) from a text expression (the first 32 bits of its MD5):
    the same text always lands in the same bucket, on every run and every warehouse. -#}
{% macro hash_bucket(expr) -%}
    {{ return(adapter.dispatch('hash_bucket', 'mos_pipelines')(expr)) }}
{%- endmacro %}

{% macro default__hash_bucket(expr) -%}
    cast(cast(('0x' || substr({{ md5_hex(expr) }}, 1, 8)) as bigint) as double) / 4294967296.0
{%- endmacro %}

{% macro duckdb__hash_bucket(expr) -%}
    cast(('0x' || substr(md5({{ expr }}), 1, 8)) as ubigint) / 4294967296.0
{%- endmacro %}

{% macro spark__hash_bucket(expr) -%}
    cast(conv(substr(md5({{ expr }}), 1, 8), 16, 10) as double) / cast(4294967296 as double)
{%- endmacro %}
