{#
    Email addresses.

    normalise_email(expr): trimmed and lower-cased, '' -> null (the address as it can be mailed).
    email_match_key(expr): the key identity matching joins on, from a normalised address: the
        `+tag` is dropped for every domain, googlemail.com becomes gmail.com, and dots in the local
        part are dropped for gmail.com ('J.Doe+news@GoogleMail.com' -> 'jdoe@gmail.com'). Null for
        text that is not an address (no or several '@', spaces, no dot in the domain, empty local part).
#}
{% macro normalise_email(expr) -%}
    nullif(lower(trim({{ expr }})), '')
{%- endmacro %}


{% macro email_match_key(expr) -%}
    {%- set local_part = dbt.split_part(dbt.split_part(expr, "'@'", 1), "'+'", 1) -%}
    {%- set raw_domain = dbt.split_part(expr, "'@'", 2) -%}
    {%- set domain = "case when " ~ raw_domain ~ " = 'googlemail.com' then 'gmail.com' else " ~ raw_domain ~ " end" -%}
    case
            when {{ expr }} like '%_@_%._%'
                and {{ expr }} not like '%@%@%'
                and {{ expr }} not like '% %'
                and {{ local_part }} != ''
                then
                    case
                        when {{ domain }} = 'gmail.com' then replace({{ local_part }}, '.', '')
                        else {{ local_part }}
                    end
                    || '@' || {{ domain }}
        end
{%- endmacro %}
