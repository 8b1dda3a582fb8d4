{#
    Places and organisations.

    normalise_city(expr): normalise_text without spaces ('Montréal' -> 'montreal', 'San  Francisco' and
        'SanFrancisco' -> 'sanfrancisco'): exports drop or double the spaces of place names.
    normalise_postcode(expr): upper case without any whitespace ('ec1a 1bb' -> 'EC1A1BB'); '' -> null.
    normalise_company(expr): normalise_text, then trailing legal-form words removed, repeatedly
        ('Blue Peak Software Inc.' -> 'blue peak software', 'Apex S.A. de C.V.' -> 'apex'). The words
        are var mos__identity_company_legal_suffixes, written in normalised form ('pte ltd' works as
        two words; 'sa de cv' as one phrase). A name that is only a legal form is kept.
#}
{% macro normalise_city(expr) -%}
    nullif(replace({{ normalise_text(expr) }}, ' ', ''), '')
{%- endmacro %}


{% macro normalise_postcode(expr) -%}
    nullif(upper({{ regexp_replace_all(expr, '[[:space:]]+', '') }}), '')
{%- endmacro %}


{% macro normalise_company(expr) -%}
    {%- set suffixes = var('mos__identity_company_legal_suffixes') | map('lower') | list -%}
    {%- if suffixes | length == 0 -%}
        {{ normalise_text(expr) }}
    {%- else -%}
        {%- set alternatives = suffixes | join('|') -%}
        nullif(trim({{ regexp_replace_all(normalise_text(expr), '( (' ~ alternatives ~ '))+$', '') }}), '')
    {%- endif -%}
{%- endmacro %}
