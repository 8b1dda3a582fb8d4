{#
    Person names for matching.

    normalise_name(expr): normalise_text (lower case, no accents, no punctuation, one space).
    canonical_first_name(name_norm_expr, nickname_expr): the nickname seed's canonical given name
        when the normalised first name is a known nickname (bob -> robert), else the name itself.
        `nickname_expr` is the seed's canonical_name column of a left join on
        nicknames.nickname = <name_norm_expr>.
    first_token(expr) / rest_after_first_token(expr): naive split of a full name at its first
        space ('mary ann lee' -> 'mary', 'ann lee'); null when there is no second part.
#}
{% macro normalise_name(expr) -%}
    {{ normalise_text(expr) }}
{%- endmacro %}


{% macro canonical_first_name(name_norm_expr, nickname_expr) -%}
    coalesce({{ nickname_expr }}, {{ name_norm_expr }})
{%- endmacro %}


{% macro first_token(expr) -%}
    nullif({{ dbt.split_part(expr, "' '", 1) }}, '')
{%- endmacro %}


{% macro rest_after_first_token(expr) -%}
    nullif(trim(substr({{ expr }}, {{ dbt.length(first_token(expr)) }} + 2)), '')
{%- endmacro %}
