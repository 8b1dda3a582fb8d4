{#-
    One lifecycle stage per customer, decided by the rules of seed lifecycle_rules over the signals of
    int_customer_lifecycle__signals. A rule is a set of rows sharing a rule_id; it matches when every
    row's signal lies within [min_value, max_value] (an empty bound is open). The matching rule with
    the lowest precedence decides the stage; no match -> var mos__lifecycle_default_stage.
    stage_entered_at: the latest of the matching rule's condition times, where a count signal tested
    with min_value <= 1 became true at its `<signal>_first_at`, a days_since signal at its reference
    time + min_value days; null when any condition has no such time (e.g. a score threshold).
-#}
{#- signal name -> (kind, time column or none): kind count | days_since | level -#}
{%- set signals = {
    'completed_order_count': ('count', 'completed_order_count_first_at'),
    'refunded_order_count_90d': ('level', none),
    'days_since_last_activity': ('days_since', 'last_activity_at'),
    'days_since_last_order': ('days_since', 'last_order_at'),
    'demo_request_count_90d': ('count', 'demo_request_count_90d_first_at'),
    'webinar_registration_count_90d': ('count', 'webinar_registration_count_90d_first_at'),
    'webinar_attended_count': ('count', 'webinar_attended_count_first_at'),
    'engagement_score_30d': ('level', none),
    'engagement_score_90d': ('level', none),
    'sessions_30d': ('level', none),
    'email_opens_30d': ('level', none),
    'email_clicks_30d': ('level', none),
    'is_signed_up': ('count', 'is_signed_up_first_at'),
    'crm_record_count': ('count', 'crm_record_count_first_at'),
    'sales_crm_record_count': ('count', 'sales_crm_record_count_first_at'),
    'is_email_consented': ('count', 'is_email_consented_first_at'),
    'email_count': ('count', 'email_count_first_at'),
    'account_buying_group_complete': ('level', none),
    'account_engaged_persona_count': ('level', none),
    'account_customer_contact_count': ('level', none),
    'graph_engaged_tie_count': ('level', none),
    'graph_engaged_persona_count': ('level', none),
    'graph_engaged_manager_count': ('level', none),
    'graph_former_colleague_customer_count': ('level', none),
} -%}
{%- set stages = var('mos__lifecycle_stages') -%}

with

signals as (

    select * from {{ ref('int_customer_lifecycle__signals') }}

),

rules as (

    select * from {{ ref('lifecycle_rules') }}

),

signal_values as (

    {%- for signal, spec in signals.items() %}
    select
        customer_id,
        '{{ signal }}' as signal_name,
        '{{ spec[0] }}' as signal_kind,
        cast({{ signal }} as double) as signal_value,
        {%- if spec[1] %}
        cast({{ spec[1] }} as timestamp) as signal_at
        {%- else %}
        cast(null as timestamp) as signal_at
        {%- endif %}
    from signals
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

conditions as (

    select
        signal_values.customer_id,
        rules.rule_id,
        rules.stage,
        rules.precedence,
        rules.reason,
        rules.signal,
        signal_values.signal_value,
        coalesce(
            signal_values.signal_value is not null
            and (rules.min_value is null or signal_values.signal_value >= rules.min_value)
            and (rules.max_value is null or signal_values.signal_value <= rules.max_value),
            false
        ) as is_met,
        case
            when signal_values.signal_kind = 'days_since' and rules.min_value is not null
                then {{ dbt.dateadd('day', 'cast(rules.min_value as integer)', 'signal_values.signal_at') }}
            when signal_values.signal_kind = 'count' and coalesce(rules.min_value, 0) <= 1
                then signal_values.signal_at
        end as condition_met_at
    from rules
    inner join signal_values
        on rules.signal = signal_values.signal_name

),

matched_rules as (

    select
        customer_id,
        rule_id,
        min(stage) as stage,  -- noqa: RF04
        min(precedence) as precedence,
        min(reason) as reason,
        case when count(condition_met_at) = count(*) then max(condition_met_at) end as stage_entered_at
    from conditions
    group by customer_id, rule_id
    having min(case when is_met then 1 else 0 end) = 1

),

ranked_rules as (

    select
        customer_id,
        rule_id,
        stage,
        precedence,
        reason,
        stage_entered_at,
        row_number() over (partition by customer_id order by precedence asc, rule_id asc) as rule_rank
    from matched_rules

),

winning_evidence as (

    -- the evidence of the winning rule only: the ordered text aggregate over every rule's conditions cost more than
    -- the rest of the model (issue 20)
    select
        conditions.customer_id,
        conditions.rule_id,
        {{ dbt.listagg(
            "conditions.signal || '=' || cast(conditions.signal_value as " ~ dbt.type_string() ~ ")",
            "'; '",
            'order by conditions.signal'
        ) }}
            as stage_evidence
    from conditions
    inner join ranked_rules
        on
            conditions.customer_id = ranked_rules.customer_id
            and conditions.rule_id = ranked_rules.rule_id
            and ranked_rules.rule_rank = 1
    group by conditions.customer_id, conditions.rule_id

),

winning_rules as (

    select
        ranked_rules.customer_id,
        ranked_rules.rule_id,
        ranked_rules.stage,
        ranked_rules.reason,
        winning_evidence.stage_evidence,
        ranked_rules.stage_entered_at
    from ranked_rules
    inner join winning_evidence
        on
            ranked_rules.customer_id = winning_evidence.customer_id
            and ranked_rules.rule_id = winning_evidence.rule_id
    where ranked_rules.rule_rank = 1

),

customer_stages as (

    select
        signals.customer_id,
        signals.account_key,
        coalesce(winning_rules.stage, '{{ var("mos__lifecycle_default_stage") }}') as lifecycle_stage,
        winning_rules.rule_id as stage_rule_id,
        coalesce(winning_rules.reason, 'no lifecycle rule matched') as stage_reason,
        winning_rules.stage_evidence,
        case
            when winning_rules.rule_id is null then signals.first_seen_at
            else winning_rules.stage_entered_at
        end as stage_entered_at,
        signals.as_of_at
    from signals
    left join winning_rules
        on signals.customer_id = winning_rules.customer_id

),

ranked as (

    select
        *,
        case lifecycle_stage
            {%- for stage in stages %}
            when '{{ stage }}' then {{ loop.index }}
            {%- endfor %}
        end as stage_rank
    from customer_stages

),

account_stages as (

    -- the most advanced stage among the account's contacts (churn_risk counts as a customer account)
    select
        account_key,
        max(
            case
                when
                    lifecycle_stage = 'churn_risk'
                    then {{ stages.index('customer') + 1 if 'customer' in stages else 0 }} else
                    stage_rank
            end
        )
            as account_stage_rank
    from ranked
    where account_key is not null
    group by account_key

),

final as (

    select
        -- keys
        ranked.customer_id,
        ranked.account_key,

        -- dimensions
        ranked.lifecycle_stage,
        ranked.stage_rank,
        ranked.stage_rule_id,
        ranked.stage_reason,
        ranked.stage_evidence,
        case account_stages.account_stage_rank
            {%- for stage in stages %}
            when {{ loop.index }} then '{{ stage }}'
            {%- endfor %}
        end as account_stage,

        -- timestamps
        ranked.stage_entered_at,
        ranked.as_of_at

    from ranked
    left join account_stages
        on ranked.account_key = account_stages.account_key

)

select * from final
