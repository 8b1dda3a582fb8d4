{#-
    The buying group as the relationship graph sees it, one row per customer (lifecycle signals `graph_*`):
    - working ties: reports_to / manages / same_buying_group / mentioned_with / introduced_by edges of
      customer_relationships, either direction. Plain `colleague` edges are left out: they only restate the
      account key, which the account_* signals already read.
    - graph_engaged_tie_count: engaged customers (int_relationships__contacts.is_engaged) among the working ties.
    - graph_engaged_persona_count: known personas among the customer (when engaged) and its engaged working ties:
      the functions of the customer's own circle, which may be fewer than the account's.
    - graph_engaged_manager_count: engaged customers the customer reports to (titles or notes).
    - graph_former_colleague_customer_count: former colleagues (a person who moved company; another account by
      construction) with a completed order.
    A table, not a view: its six data tests and the lifecycle signals each evaluated the view again (issue 20).
-#}
{{ config(materialized='table') }}
with

edges as (

    select * from {{ ref('customer_relationships') }}

),

contacts as (

    select * from {{ ref('int_relationships__contacts') }}

),

activity as (

    select * from {{ ref('int_customers__activity') }}

),

person_edges as (

    select
        source_id,
        relationship,
        target_id
    from edges
    where source_kind = 'customer' and target_kind = 'customer'

),

ties as (

    select
        source_id as customer_id,
        target_id as neighbour_id,
        relationship = 'reports_to' as is_manager
    from person_edges
    where relationship in ('reports_to', 'manages', 'same_buying_group', 'mentioned_with', 'introduced_by')

    union all

    select
        target_id as customer_id,
        source_id as neighbour_id,
        relationship = 'manages' as is_manager
    from person_edges
    where relationship in ('reports_to', 'manages', 'same_buying_group', 'mentioned_with', 'introduced_by')

),

engaged_ties as (

    select
        ties.customer_id,
        ties.neighbour_id,
        min(contacts.persona) as neighbour_persona,
        max(case when ties.is_manager then 1 else 0 end) = 1 as is_manager
    from ties
    inner join contacts
        on ties.neighbour_id = contacts.customer_id
    where contacts.is_engaged and ties.customer_id != ties.neighbour_id
    group by ties.customer_id, ties.neighbour_id

),

circle_personas as (

    select
        customer_id,
        neighbour_persona as persona
    from engaged_ties

    union

    select
        customer_id,
        persona
    from contacts
    where is_engaged

),

persona_counts as (

    select
        customer_id,
        count(distinct persona) as engaged_persona_count
    from circle_personas
    where persona is not null and persona != 'unknown'
    group by customer_id

),

tie_counts as (

    select
        customer_id,
        count(*) as engaged_tie_count,
        count(case when is_manager then 1 end) as engaged_manager_count
    from engaged_ties
    group by customer_id

),

former_colleagues as (

    select
        source_id as customer_id,
        target_id as neighbour_id
    from person_edges
    where relationship = 'former_colleague'

    union

    select
        target_id as customer_id,
        source_id as neighbour_id
    from person_edges
    where relationship = 'former_colleague'

),

former_customers as (

    select
        former_colleagues.customer_id,
        count(*) as former_colleague_customer_count
    from former_colleagues
    inner join activity
        on former_colleagues.neighbour_id = activity.customer_id
    where activity.completed_order_count > 0
    group by former_colleagues.customer_id

),

final as (

    select
        contacts.customer_id,
        coalesce(tie_counts.engaged_tie_count, 0) as graph_engaged_tie_count,
        coalesce(persona_counts.engaged_persona_count, 0) as graph_engaged_persona_count,
        coalesce(tie_counts.engaged_manager_count, 0) as graph_engaged_manager_count,
        coalesce(former_customers.former_colleague_customer_count, 0) as graph_former_colleague_customer_count
    from contacts
    left join tie_counts
        on contacts.customer_id = tie_counts.customer_id
    left join persona_counts
        on contacts.customer_id = persona_counts.customer_id
    left join former_customers
        on contacts.customer_id = former_customers.customer_id

)

select * from final
