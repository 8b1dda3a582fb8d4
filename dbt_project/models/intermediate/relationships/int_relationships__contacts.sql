-- One row per customer with what the relationship graph reads: first name, account, title, persona, seniority,
-- and whether the customer is an engaged member of its account's buying group (var mos__buying_group).
{%- set settings = var('mos__buying_group') %}

with

customers as (

    select * from {{ ref('dim_customers') }}

),

firmographics as (

    select * from {{ ref('int_customers__firmographics') }}

),

activity as (

    select * from {{ ref('int_customers__activity') }}

),

final as (

    select
        customers.customer_id,
        customers.first_name,
        firmographics.account_key,
        firmographics.company,
        firmographics.job_title,
        firmographics.persona,
        firmographics.seniority,
        coalesce(activity.engagement_score_90d >= {{ settings.get('engaged_min_score', 1) }}, false) as is_engaged
    from customers
    left join firmographics
        on customers.customer_id = firmographics.customer_id
    left join activity
        on customers.customer_id = activity.customer_id

)

select * from final
