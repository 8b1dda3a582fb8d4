{#-
    The signals lifecycle rules (seed lifecycle_rules) can test, one row per customer: the lead's own
    activity, its CRM presence and consent, its account's buying group, and its own circle in the relationship
    graph (int_customers__graph_buying_groups: engaged working ties across titles and notes). Each `<signal>` may have a
    `<signal>_first_at` (when it first became non-zero) used for dim_customer_lifecycle.stage_entered_at.
    A table, not a view: its six data tests and dim_customer_lifecycle each evaluated the view again (issue 20).
-#}
{{ config(materialized='table') }}
with

customers as (

    select * from {{ ref('dim_customers') }}

),

activity as (

    select * from {{ ref('int_customers__activity') }}

),

firmographics as (

    select * from {{ ref('int_customers__firmographics') }}

),

buying_groups as (

    select * from {{ ref('int_accounts__buying_groups') }}

),

graph_buying_groups as (

    select * from {{ ref('int_customers__graph_buying_groups') }}

),

consent as (

    select * from {{ ref('dim_customer_consents') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

crm_contacts as (

    select * from {{ ref('int_crm_contacts__normalised') }}

),

crm_presence as (

    select
        identity_map.customer_id,
        min(crm_contacts.created_at) as first_crm_record_at,
        count(case
            when crm_contacts.source_system in ({{ quoted_list(var('mos__lifecycle_sales_crm_systems')) }})
                then 1
        end) as sales_crm_record_count,
        min(case
            when crm_contacts.source_system in ({{ quoted_list(var('mos__lifecycle_sales_crm_systems')) }})
                then crm_contacts.created_at
        end) as first_sales_crm_record_at
    from identity_map
    inner join crm_contacts
        on identity_map.node_key = crm_contacts.node_key
    group by identity_map.customer_id

),

identifiers as (

    select
        customer_id,
        min(case when node_type = 'email' then first_seen_at end) as first_email_at,
        min(case when node_type = 'user' then first_seen_at end) as first_user_id_at
    from identity_map
    group by customer_id

),

final as (

    select
        -- keys
        customers.customer_id,
        firmographics.account_key,

        -- the lead's own signals
        activity.completed_order_count,
        activity.first_order_at as completed_order_count_first_at,
        activity.refunded_order_count_90d,
        {{ dbt.datediff('activity.last_activity_at', 'activity.as_of_at', 'day') }} as days_since_last_activity,  -- noqa: LT05
        activity.last_activity_at,
        {{ dbt.datediff('activity.last_order_at', 'activity.as_of_at', 'day') }} as days_since_last_order,  -- noqa: LT05
        activity.last_order_at,
        activity.demo_request_count_90d,
        activity.first_demo_request_at as demo_request_count_90d_first_at,
        activity.webinar_registration_count_90d,
        activity.first_webinar_registration_at as webinar_registration_count_90d_first_at,
        activity.webinar_attended_count,
        activity.first_webinar_attended_at as webinar_attended_count_first_at,
        activity.engagement_score_30d,
        activity.engagement_score_90d,
        activity.sessions_30d,
        activity.email_opens_30d,
        activity.email_clicks_30d,
        case when customers.user_id_count > 0 then 1 else 0 end as is_signed_up,
        coalesce(activity.first_signup_at, identifiers.first_user_id_at) as is_signed_up_first_at,
        customers.crm_record_count,
        crm_presence.first_crm_record_at as crm_record_count_first_at,
        coalesce(crm_presence.sales_crm_record_count, 0) as sales_crm_record_count,
        crm_presence.first_sales_crm_record_at as sales_crm_record_count_first_at,
        case when consent.is_consented then 1 else 0 end as is_email_consented,
        case when consent.decided_by = 'event' then consent.occurred_at end as is_email_consented_first_at,
        customers.email_count,
        identifiers.first_email_at as email_count_first_at,

        -- the account's signals
        case when buying_groups.is_buying_group_complete then 1 else 0 end as account_buying_group_complete,
        coalesce(buying_groups.engaged_persona_count, 0) as account_engaged_persona_count,
        coalesce(buying_groups.customer_contact_count, 0) as account_customer_contact_count,

        -- the customer's circle in the relationship graph
        coalesce(graph_buying_groups.graph_engaged_tie_count, 0) as graph_engaged_tie_count,
        coalesce(graph_buying_groups.graph_engaged_persona_count, 0) as graph_engaged_persona_count,
        coalesce(graph_buying_groups.graph_engaged_manager_count, 0) as graph_engaged_manager_count,
        coalesce(graph_buying_groups.graph_former_colleague_customer_count, 0)
            as graph_former_colleague_customer_count,

        -- timestamps
        customers.first_seen_at,
        activity.as_of_at

    from customers
    inner join activity
        on customers.customer_id = activity.customer_id
    left join firmographics
        on customers.customer_id = firmographics.customer_id
    left join buying_groups
        on firmographics.account_key = buying_groups.account_key
    left join graph_buying_groups
        on customers.customer_id = graph_buying_groups.customer_id
    left join consent
        on
            customers.customer_id = consent.customer_id
            and consent.purpose = 'email_marketing'
    left join crm_presence
        on customers.customer_id = crm_presence.customer_id
    left join identifiers
        on customers.customer_id = identifiers.customer_id

)

select * from final
