{#
    True when `host_expr` (a lower-cased host) is one of var mos__organic_referrer_domains or a
    subdomain of one (google.com matches www.google.com, not notgoogle.com).
#}
{% macro is_organic_referrer(host_expr) -%}
    {%- set domains = var('mos__organic_referrer_domains') -%}
    {%- if domains | length == 0 -%}
        false
    {%- else -%}
        (
            {%- for domain in domains %}
            {{ host_expr }} = '{{ domain | lower }}' or {{ host_expr }} like '%.{{ domain | lower }}'
            {{- ' or' if not loop.last }}
            {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}


{#- Host without a leading `www.`, so that www.example.com and example.com count as the same site. -#}
{% macro site_host(host_expr) -%}
    case
        when {{ host_expr }} like 'www.%' then substr({{ host_expr }}, 5)
        else {{ host_expr }}
    end
{%- endmacro %}


{#- Match key of a UTM value: trimmed, lower-cased, empty -> null (the channel_mapping seed is matched on it). -#}
{% macro utm_key(expr) -%}
    lower({{ clean_string(expr) }})
{%- endmacro %}
