{#
    Golden-record survivorship (dim_customers). Each attribute takes the value of the first candidate
    record in an order given by its rule in var mos__survivorship; only non-null values compete.

    survivorship_value(attribute, setting, partition_by): the window expression picking the value.
    survivorship_order(setting): the order by list of a rule:
      source_priority (setting.sources: systems in order; others after them), then most recent;
      most_recent: latest updated_at first;
      most_complete: the record with the most non-null golden attributes (column filled_attributes)
        first, then most recent.
    Ties end on record_key, so the result is deterministic.
    Expects columns source_system, updated_at, filled_attributes and record_key in scope.
#}
{% macro survivorship_value(attribute, setting, partition_by) -%}
    first_value({{ attribute }}) over (partition by {{ partition_by }} order by case when {{ attribute }} is null then 1 else 0 end, {{ survivorship_order(setting) }}, record_key rows between unbounded preceding and unbounded following)
{%- endmacro %}


{#-
    var mos__survivorship checked against the model's golden attributes: an unknown attribute is an
    error, an attribute without a rule gets most_recent. Returns attribute -> setting.
-#}
{% macro survivorship_settings(golden_attributes) -%}
    {%- set configured = var('mos__survivorship') -%}
    {%- set settings = {} -%}
    {%- for attribute in configured -%}
        {%- if attribute not in golden_attributes -%}
            {{ exceptions.raise_compiler_error(
                "var mos__survivorship: '" ~ attribute ~ "' is not a golden attribute ("
                ~ golden_attributes | join(', ') ~ ")"
            ) }}
        {%- endif -%}
    {%- endfor -%}
    {%- for attribute in golden_attributes -%}
        {%- do settings.update({attribute: configured.get(attribute, {'rule': 'most_recent'})}) -%}
    {%- endfor -%}
    {{ return(settings) }}
{%- endmacro %}


{% macro survivorship_order(setting) -%}
    {%- set rule = setting.get('rule') if setting is mapping else setting -%}
    {%- set most_recent = 'case when updated_at is null then 1 else 0 end, updated_at desc' -%}
    {%- if rule == 'source_priority' -%}
        {%- set sources = setting.get('sources', []) -%}
        {%- if sources | length == 0 -%}
            {{ exceptions.raise_compiler_error("var mos__survivorship: rule source_priority needs a non-empty `sources` list") }}
        {%- endif -%}
        case source_system {% for source in sources %}when '{{ source }}' then {{ loop.index }} {% endfor %}else {{ sources | length + 1 }} end, {{ most_recent }}
    {%- elif rule == 'most_recent' -%}
        {{ most_recent }}
    {%- elif rule == 'most_complete' -%}
        filled_attributes desc, {{ most_recent }}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "var mos__survivorship: unknown rule '" ~ rule ~ "' (expected source_priority, most_recent or most_complete)"
        ) }}
    {%- endif -%}
{%- endmacro %}
