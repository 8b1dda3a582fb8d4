{#
    Text value at a key path of a JSON column, null when absent.

    `path` is a list of keys, or a dot-separated string of keys (use the list form when a key
    contains a dot). Keys may contain spaces or slashes (CSV headers such as "Country/Region").

        {{ json_text('context', 'campaign.source') }}
        {{ json_text('record', ['Record ID']) }}
#}
{% macro json_text(json_expr, path) -%}
    {%- set keys = path.split('.') if path is string else path -%}
    {{ return(adapter.dispatch('json_text', 'mos_pipelines')(json_expr, keys)) }}
{%- endmacro %}

{% macro default__json_text(json_expr, keys) -%}
    json_extract_path_text({{ json_expr }}{% for key in keys %}, '{{ key | replace("'", "''") }}'{% endfor %})
{%- endmacro %}

{% macro duckdb__json_text(json_expr, keys) -%}
    json_extract_string({{ json_expr }}, '${% for key in keys %}."{{ key | replace("'", "''") | replace('"', '\\"') }}"{% endfor %}')
{%- endmacro %}

{% macro spark__json_text(json_expr, keys) -%}
    {#- JSONPath in bracket form, so keys may hold spaces, dots or slashes; Spark's JSONPath has no quote escape. -#}
    {%- for key in keys if "'" in key or "\\" in key or "]" in key -%}
        {{ exceptions.raise_compiler_error("json_text on Spark: key " ~ key ~ " holds a quote, backslash or ]") }}
    {%- endfor -%}
    get_json_object({{ json_expr }}, '${% for key in keys %}[\'{{ key }}\']{% endfor %}')
{%- endmacro %}
