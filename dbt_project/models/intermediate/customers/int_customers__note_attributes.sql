-- One row per customer with notes: the current (newest, not retracted) value of every note attribute; a budget's
-- currency and a next step's date only when they come from the same note as the amount and the step.
with

note_attributes as (

    select * from {{ ref('customer_note_attributes') }}

),

current_values as (

    select * from note_attributes
    where is_current and customer_id is not null

),

single as (

    select
        customer_id,
        max(case when attribute = 'budget_amount' then value_number end) as note_budget_amount,
        max(case when attribute = 'budget_amount' then note_id end) as budget_note_id,
        max(case when attribute = 'decision_timeline' then value_start_date end) as note_decision_start_date,
        max(case when attribute = 'decision_timeline' then value_end_date end) as note_decision_end_date,
        max(case when attribute = 'role' then value end) as note_role,
        max(case when attribute = 'seniority' then value end) as note_seniority,
        max(case when attribute = 'pain_point' then value end) as note_pain_point,
        max(case when attribute = 'next_step' then value end) as note_next_step,
        max(case when attribute = 'next_step' then note_id end) as next_step_note_id,
        max(case when attribute = 'sentiment' then value end) as note_sentiment
    from current_values
    group by customer_id

),

paired as (

    select
        single.customer_id,
        max(case when currency.attribute = 'budget_currency' then currency.value end) as note_budget_currency,
        max(case when step_date.attribute = 'next_step_date' then step_date.value_start_date end)
            as note_next_step_date
    from single
    left join current_values as currency
        on
            single.customer_id = currency.customer_id
            and currency.attribute = 'budget_currency'
            and single.budget_note_id = currency.note_id
    left join current_values as step_date
        on
            single.customer_id = step_date.customer_id
            and step_date.attribute = 'next_step_date'
            and single.next_step_note_id = step_date.note_id
    group by single.customer_id

),

lists as (

    select
        customer_id,
        {{ dbt.listagg("case when attribute = 'product_interest' then value end", "';'", 'order by value') }}
            as note_product_interest,
        {{ dbt.listagg("case when attribute = 'competitor' then value end", "';'", 'order by value') }}
            as note_competitors
    from current_values
    group by customer_id

),

counts as (

    select
        customer_id,
        count(distinct note_id) as note_count,
        max(note_created_at) as last_note_at
    from note_attributes
    where customer_id is not null
    group by customer_id

),

final as (

    select
        counts.customer_id,
        nullif(lists.note_product_interest, '') as note_product_interest,
        single.note_budget_amount,
        paired.note_budget_currency,
        single.note_decision_start_date,
        single.note_decision_end_date,
        nullif(lists.note_competitors, '') as note_competitors,
        single.note_role,
        single.note_seniority,
        single.note_pain_point,
        single.note_next_step,
        paired.note_next_step_date,
        single.note_sentiment,
        counts.note_count,
        counts.last_note_at
    from counts
    left join single
        on counts.customer_id = single.customer_id
    left join paired
        on counts.customer_id = paired.customer_id
    left join lists
        on counts.customer_id = lists.customer_id

)

select * from final
