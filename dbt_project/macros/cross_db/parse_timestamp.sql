{#
    Parse text into a timestamp (UTC, without time zone); null when the text does not parse.

    parse_timestamp(expr, format): an explicit strftime-style format, e.g. '%m/%d/%Y %H:%M'.
    parse_iso_timestamp(expr):     ISO 8601, with or without a `Z` / `+hh:mm` offset; an offset is
                                   converted to UTC, a naive value is taken as UTC.
#}
{% macro parse_timestamp(expr, format) -%}
    {{ return(adapter.dispatch('parse_timestamp', 'mos_pipelines')(expr, format)) }}
{%- endmacro %}

{% macro default__parse_timestamp(expr, format) -%}
    {#- strftime directives differ per warehouse: an adapter implementation should translate `format`. -#}
    to_timestamp({{ expr }}, '{{ format }}')
{%- endmacro %}

{% macro duckdb__parse_timestamp(expr, format) -%}
    try_strptime({{ expr }}, '{{ format }}')
{%- endmacro %}


{% macro parse_iso_timestamp(expr) -%}
    {{ return(adapter.dispatch('parse_iso_timestamp', 'mos_pipelines')(expr)) }}
{%- endmacro %}

{% macro default__parse_iso_timestamp(expr) -%}
    cast({{ expr }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro duckdb__parse_iso_timestamp(expr) -%}
    {#- timestamptz honours an offset; the profile pins the session time zone to UTC for naive values. -#}
    timezone('UTC', try_cast({{ expr }} as timestamptz))
{%- endmacro %}

{% macro spark__parse_timestamp(expr, format) -%}
    {#- strftime directives as Spark datetime patterns (one letter: one or two digits, as strptime accepts);
        to_timestamp yields null on text that does not parse (ANSI mode off, as dbt-spark sets it). -#}
    {%- set directives = {'%Y': 'yyyy', '%m': 'M', '%d': 'd', '%H': 'H', '%M': 'm', '%S': 's', '%y': 'yy'} -%}
    {%- set pattern = namespace(text=format) -%}
    {%- for directive, letters in directives.items() -%}
        {%- set pattern.text = pattern.text | replace(directive, letters) -%}
    {%- endfor -%}
    {%- if '%' in pattern.text -%}
        {{ exceptions.raise_compiler_error("parse_timestamp on Spark: no pattern for a directive of " ~ format) }}
    {%- endif -%}
    to_timestamp({{ expr }}, '{{ pattern.text }}')
{%- endmacro %}
