{#
    manual_edit_value(attribute, expr): a field's value as set through the CRM API (text in the operational store),
    in the golden attribute's form: emails normalised like survivorship's candidates, postcodes upper-cased,
    birth dates cast to date (a value that is not a date is null).
#}
{% macro manual_edit_value(attribute, expr) -%}
    {%- if attribute == 'email' -%}
        {{ normalise_email(expr) }}
    {%- elif attribute == 'postcode' -%}
        upper({{ expr }})
    {%- elif attribute == 'birth_date' -%}
        {{ safe_cast(expr, 'date') }}
    {%- else -%}
        {{ expr }}
    {%- endif -%}
{%- endmacro %}
