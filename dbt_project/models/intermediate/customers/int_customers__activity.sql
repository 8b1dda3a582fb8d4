{#-
    Per customer (every dim_customers row): sessions, events, email engagement, product signals and
    orders, lifetime and in trailing windows of 7, 30 and 90 days ending at int_customers__as_of.as_of_at
    (an activity is in the N-day window when as_of_at - N days < occurred_at <= as_of_at), plus the
    engagement score (var mos__engagement_score_weights) over 30 and 90 days.
    Pre-order web activity, for models of who buys: sessions on devices the customer identified on
    (sign-up or log-in, int_customer_sessions__mapped.is_identified_device; or a tracked email click in a
    session that ended before the window's end, device_email_click_at) that ended in the 90 days
    before the customer's first order of any status (before as_of_at without one), and the length of
    that window once clipped to the start of the session data. A buyer's anonymous sessions become
    theirs through the order, a non-buyer's never do, so only identified sessions compare the two fairly.
-#}
{{ config(materialized='table') }}

{%- set windows = [7, 30, 90] -%}
{%- set weights = var('mos__engagement_score_weights') -%}
{%- set product_events = [
    ('signup', 'Signed Up'),
    ('webinar_registration', 'Webinar Registered'),
    ('demo_request', 'Demo Requested'),
    ('product_view', 'Product Viewed'),
] -%}
{%- set email_metrics = [('delivered', 'email_deliveries'), ('opened', 'email_opens'), ('clicked', 'email_clicks')] -%}

with

customers as (

    select * from {{ ref('dim_customers') }}

),

as_of as (

    select * from {{ ref('int_customers__as_of') }}

),

sessions as (

    select * from {{ ref('int_customer_sessions__mapped') }}

),

events as (

    select * from {{ ref('int_customer_events__mapped') }}

),

email_events as (

    select * from {{ ref('int_customer_email_events__mapped') }}

),

orders as (

    select * from {{ ref('int_customer_orders__mapped') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

webinar_contacts as (

    select * from {{ ref('stg_webinar__contacts') }}

),

session_data as (

    select min(session_start_at) as first_session_at from {{ ref('fct_sessions') }}

),

session_stats as (

    select
        sessions.customer_id,
        count(*) as session_count,
        {%- for days in windows %}
        count(case when sessions.session_start_at > {{ dbt.dateadd('day', -days, 'as_of.as_of_at') }} then 1 end)
            as sessions_{{ days }}d,
        {%- endfor %}
        cast(sum(case
            when sessions.session_start_at > {{ dbt.dateadd('day', -30, 'as_of.as_of_at') }}
                then sessions.page_view_count
            else 0
        end) as bigint) as page_views_30d,
        max(sessions.session_start_at) as last_session_at
    from sessions
    cross join as_of
    where sessions.session_start_at <= as_of.as_of_at
    group by sessions.customer_id

),

event_stats as (

    select
        events.customer_id,
        count(*) as event_count,
        {%- for days in windows %}
        count(case when events.occurred_at > {{ dbt.dateadd('day', -days, 'as_of.as_of_at') }} then 1 end)
            as events_{{ days }}d,
        {%- endfor %}
        count(distinct case
            when events.occurred_at > {{ dbt.dateadd('day', -30, 'as_of.as_of_at') }}
                then cast(events.occurred_at as date)
        end) as active_days_30d,
        {%- for signal, event_name in product_events %}
        count(case when events.event_name = '{{ event_name }}' then 1 end) as {{ signal }}_count,
        {%- for days in [30, 90] %}
        count(case
            when events.event_name = '{{ event_name }}'
                and events.occurred_at > {{ dbt.dateadd('day', -days, 'as_of.as_of_at') }}
                then 1
        end) as {{ signal }}_count_{{ days }}d,
        {%- endfor %}
        min(case when events.event_name = '{{ event_name }}' then events.occurred_at end) as first_{{ signal }}_at,
        {%- endfor %}
        min(events.occurred_at) as first_event_at,
        max(events.occurred_at) as last_event_at
    from events
    cross join as_of
    where events.occurred_at <= as_of.as_of_at
    group by events.customer_id

),

email_stats as (

    select
        email_events.customer_id,
        {%- for event_type, column in email_metrics %}
        {%- for days in windows %}
        count(case
            when email_events.email_event_type = '{{ event_type }}'
                and email_events.occurred_at > {{ dbt.dateadd('day', -days, 'as_of.as_of_at') }}
                then 1
        end) as {{ column }}_{{ days }}d,
        {%- endfor %}
        {%- endfor %}
        max(case when email_events.email_event_type = 'clicked' then email_events.occurred_at end)
            as last_email_click_at
    from email_events
    cross join as_of
    where email_events.occurred_at <= as_of.as_of_at
    group by email_events.customer_id

),

webinar_stats as (

    select
        identity_map.customer_id,
        count(case when webinar_contacts.is_attended then 1 end) as webinar_attended_count,
        min(case when webinar_contacts.is_attended then webinar_contacts.registered_at end)
            as first_webinar_attended_at
    from webinar_contacts
    inner join identity_map
        on 'crm:' || webinar_contacts.contact_record_key = identity_map.node_key
    group by identity_map.customer_id

),

order_stats as (

    select
        orders.customer_id,
        count(case when orders.is_completed then 1 end) as completed_order_count,
        count(case
            when orders.is_completed and orders.created_at > {{ dbt.dateadd('day', -90, 'as_of.as_of_at') }}
                then 1
        end) as completed_order_count_90d,
        count(case
            when not orders.is_completed and orders.created_at > {{ dbt.dateadd('day', -90, 'as_of.as_of_at') }}
                then 1
        end) as refunded_order_count_90d,
        coalesce(sum(case when orders.is_completed then orders.amount_usd end), 0) as revenue_usd,
        coalesce(sum(case
            when orders.is_completed and orders.created_at > {{ dbt.dateadd('day', -90, 'as_of.as_of_at') }}
                then orders.amount_usd
        end), 0) as revenue_usd_90d,
        min(case when orders.is_completed then orders.created_at end) as first_order_at,
        min(orders.created_at) as first_any_order_at,
        max(case when orders.is_completed then orders.created_at end) as last_order_at,
        max(orders.created_at) as last_any_order_at
    from orders
    cross join as_of
    where orders.created_at <= as_of.as_of_at
    group by orders.customer_id

),

pre_order_windows as (

    select
        customers.customer_id,
        coalesce(order_stats.first_any_order_at, as_of.as_of_at) as window_end_at,
        greatest(
            {{ dbt.dateadd('day', -90, 'coalesce(order_stats.first_any_order_at, as_of.as_of_at)') }},
            coalesce(session_data.first_session_at, as_of.as_of_at)
        ) as window_start_at
    from customers
    cross join as_of
    cross join session_data
    left join order_stats on customers.customer_id = order_stats.customer_id

),

pre_order_stats as (

    select
        pre_order_windows.customer_id,
        count(sessions.session_id) as identified_sessions_pre_order_90d,
        cast(greatest(
            {{ dbt.datediff('pre_order_windows.window_start_at', 'pre_order_windows.window_end_at', 'hour') }},
            0
        ) as double) / 24 as pre_order_window_days
    from pre_order_windows
    left join sessions
        on
            pre_order_windows.customer_id = sessions.customer_id
            and (
                sessions.is_identified_device
                or pre_order_windows.window_end_at > sessions.device_email_click_at
            )
            and pre_order_windows.window_start_at < sessions.session_start_at
            and pre_order_windows.window_end_at > sessions.session_end_at
    group by pre_order_windows.customer_id, pre_order_windows.window_start_at, pre_order_windows.window_end_at

),

joined as (

    select
        customers.customer_id,
        as_of.as_of_at,
        coalesce(session_stats.session_count, 0) as session_count,
        {%- for days in windows %}
        coalesce(session_stats.sessions_{{ days }}d, 0) as sessions_{{ days }}d,
        {%- endfor %}
        coalesce(session_stats.page_views_30d, 0) as page_views_30d,
        coalesce(event_stats.event_count, 0) as event_count,
        {%- for days in windows %}
        coalesce(event_stats.events_{{ days }}d, 0) as events_{{ days }}d,
        {%- endfor %}
        coalesce(event_stats.active_days_30d, 0) as active_days_30d,
        {%- for signal in ['signup', 'webinar_registration', 'demo_request', 'product_view'] %}
        coalesce(event_stats.{{ signal }}_count, 0) as {{ signal }}_count,
        coalesce(event_stats.{{ signal }}_count_30d, 0) as {{ signal }}_count_30d,
        coalesce(event_stats.{{ signal }}_count_90d, 0) as {{ signal }}_count_90d,
        event_stats.first_{{ signal }}_at,
        {%- endfor %}
        {%- for column in ['email_deliveries', 'email_opens', 'email_clicks'] %}
        {%- for days in windows %}
        coalesce(email_stats.{{ column }}_{{ days }}d, 0) as {{ column }}_{{ days }}d,
        {%- endfor %}
        {%- endfor %}
        coalesce(webinar_stats.webinar_attended_count, 0) as webinar_attended_count,
        pre_order_stats.identified_sessions_pre_order_90d,
        pre_order_stats.pre_order_window_days,
        case
            when pre_order_stats.pre_order_window_days >= 1
                then 30 * pre_order_stats.identified_sessions_pre_order_90d / pre_order_stats.pre_order_window_days
        end as identified_sessions_per_30d_pre_order,
        webinar_stats.first_webinar_attended_at,
        coalesce(order_stats.completed_order_count, 0) as completed_order_count,
        coalesce(order_stats.completed_order_count_90d, 0) as completed_order_count_90d,
        coalesce(order_stats.refunded_order_count_90d, 0) as refunded_order_count_90d,
        coalesce(order_stats.revenue_usd, 0) as revenue_usd,
        coalesce(order_stats.revenue_usd_90d, 0) as revenue_usd_90d,
        order_stats.first_order_at,
        order_stats.last_order_at,
        session_stats.last_session_at,
        event_stats.first_event_at,
        event_stats.last_event_at,
        email_stats.last_email_click_at,
        order_stats.last_any_order_at
    from customers
    cross join as_of
    left join session_stats on customers.customer_id = session_stats.customer_id
    left join event_stats on customers.customer_id = event_stats.customer_id
    left join email_stats on customers.customer_id = email_stats.customer_id
    left join webinar_stats on customers.customer_id = webinar_stats.customer_id
    left join order_stats on customers.customer_id = order_stats.customer_id
    left join pre_order_stats on customers.customer_id = pre_order_stats.customer_id

),

final as (

    select
        *,
        {%- for days in [30, 90] %}
        cast(
            {{ weights.get('session', 0) }} * sessions_{{ days }}d
            + {{ weights.get('email_open', 0) }} * email_opens_{{ days }}d
            + {{ weights.get('email_click', 0) }} * email_clicks_{{ days }}d
            + {{ weights.get('signup', 0) }} * signup_count_{{ days }}d
            + {{ weights.get('webinar_registration', 0) }} * webinar_registration_count_{{ days }}d
            + {{ weights.get('demo_request', 0) }} * demo_request_count_{{ days }}d
            as double
        ) as engagement_score_{{ days }}d,
        {%- endfor %}
        -- last time the customer did something themselves (a session, an event, an email click, an order)
        nullif(
            greatest(
                {%- for column in ['last_session_at', 'last_event_at', 'last_email_click_at', 'last_any_order_at'] %}
                coalesce({{ column }}, cast('1970-01-01' as timestamp)){{ ',' if not loop.last }}
                {%- endfor %}
            ),
            cast('1970-01-01' as timestamp)
        ) as last_activity_at
    from joined

)

select * from final
