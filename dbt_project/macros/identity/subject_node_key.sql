{#-
    The identity node a contact subject names: an address (contains '@') is its email match key
    (`email:<key>`), anything else a user id (`user:<id>`). Consent subjects and email recipients are
    looked up and added to the graph with this one rule.
-#}
{% macro subject_node_key(subject) -%}
    case
        when {{ subject }} like '%@%'
            then 'email:' || {{ email_match_key(normalise_email(subject)) }}
        else 'user:' || {{ subject }}
    end
{%- endmacro %}
