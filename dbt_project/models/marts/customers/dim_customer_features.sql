{#-
    One row per customer (dim_customers) with the features models read: engagement in 7/30/90-day
    windows ending at as_of_at (deterministic: the data's latest activity or var mos__customers_as_of),
    firmographics (account, industry, company-size proxy, region, country, persona, seniority), identity
    and consent flags, what the customer's notes say (dim_customers.note_*), and commerce (completed orders and USD revenue). Commerce columns describe
    buying itself: a model predicting purchase must leave them out.
-#}
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

regions as (

    select * from {{ ref('int_customers__regions') }}

),

consent as (

    select * from {{ ref('dim_customer_consents') }}

),

consent_flags as (

    select
        customer_id,
        max(case when purpose = 'email_marketing' and is_consented then 1 else 0 end) = 1
            as is_email_marketing_consented,
        max(case when purpose = 'ad_personalization' and is_consented then 1 else 0 end) = 1
            as is_ad_personalization_consented,
        max(case when purpose = 'analytics' and is_consented then 1 else 0 end) = 1
            as is_analytics_consented
    from consent
    group by customer_id

),

final as (

    select
        -- keys
        customers.customer_id,
        firmographics.account_key,

        -- firmographics
        firmographics.company,
        firmographics.industry,
        firmographics.account_contact_count,
        regions.region,
        regions.country_code,
        firmographics.job_title,
        firmographics.persona,
        firmographics.seniority,

        -- identity and consent
        customers.is_identified,
        customers.user_id_count > 0 as is_signed_up,
        customers.crm_record_count,
        customers.device_count,
        consent_flags.is_email_marketing_consented,
        consent_flags.is_ad_personalization_consented,
        consent_flags.is_analytics_consented,

        -- read from notes (dim_customers.note_*: the newest note's values)
        customers.note_count,
        customers.note_budget_amount,
        customers.note_budget_currency,
        customers.note_role,
        customers.note_seniority,
        customers.note_pain_point,
        customers.note_next_step,
        customers.note_sentiment,
        customers.note_competitors is not null as is_evaluating_competitor,
        {{ dbt.datediff('activity.as_of_at', 'customers.note_decision_end_date', 'day') }} as days_to_note_decision,  -- noqa: LT05

        -- engagement
        activity.sessions_7d,
        activity.sessions_30d,
        activity.sessions_90d,
        activity.session_count,
        activity.page_views_30d,
        activity.events_7d,
        activity.events_30d,
        activity.events_90d,
        activity.event_count,
        activity.active_days_30d,
        activity.email_deliveries_30d,
        activity.email_opens_7d,
        activity.email_opens_30d,
        activity.email_opens_90d,
        activity.email_clicks_7d,
        activity.email_clicks_30d,
        activity.email_clicks_90d,
        activity.product_view_count_30d,
        activity.webinar_registration_count_90d,
        activity.webinar_attended_count,
        activity.demo_request_count_90d,
        activity.identified_sessions_pre_order_90d,
        activity.pre_order_window_days,
        activity.identified_sessions_per_30d_pre_order,
        activity.engagement_score_30d,
        activity.engagement_score_90d,
        {{ dbt.datediff('activity.last_session_at', 'activity.as_of_at', 'day') }} as days_since_last_session,  -- noqa: LT05
        {{ dbt.datediff('activity.last_activity_at', 'activity.as_of_at', 'day') }} as days_since_last_activity,  -- noqa: LT05

        -- commerce
        activity.completed_order_count as order_count,
        activity.completed_order_count_90d as orders_90d,
        activity.refunded_order_count_90d,
        activity.revenue_usd,
        activity.revenue_usd_90d,
        case
            when activity.completed_order_count > 0
                then activity.revenue_usd / activity.completed_order_count
        end as avg_order_value_usd,
        {{ dbt.datediff('activity.last_order_at', 'activity.as_of_at', 'day') }} as days_since_last_order,  -- noqa: LT05
        {{ dbt.datediff('activity.first_order_at', 'activity.as_of_at', 'day') }} as days_since_first_order,  -- noqa: LT05

        -- timestamps
        activity.first_order_at,
        activity.last_order_at,
        activity.last_activity_at,
        customers.first_seen_at,
        customers.last_seen_at,
        activity.as_of_at

    from customers
    inner join activity
        on customers.customer_id = activity.customer_id
    left join firmographics
        on customers.customer_id = firmographics.customer_id
    left join regions
        on customers.customer_id = regions.customer_id
    left join consent_flags
        on customers.customer_id = consent_flags.customer_id

)

select * from final
