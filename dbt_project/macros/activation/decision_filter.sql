{#-
    decision_filter(column, actions, ever=false): a condition that keeps the customers (``column``) whose
    next best action (decisions.next_best_action, the latest decision day) is one of ``actions``; with
    ever=true, whose decision was one of them on any day (a hand-off to sales is sticky). While the table
    does not exist (decisioning never ran) the condition is true: the sync models' stage filters alone
    decide, as before decisioning existed.
-#}
{% macro decision_filter(column, actions, ever=false) -%}
    {%- if source_exists('decisions', 'next_best_action') -%}
        {%- set decisions = source('decisions', 'next_best_action') -%}
        {{ column }} in (
            select decided.customer_id
            from {{ decisions }} as decided
            where
                decided.action in ({{ quoted_list(actions) }})
                {%- if not ever %}
                and decided.decision_date = (select max(latest.decision_date) from {{ decisions }} as latest)
                {%- endif %}
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
