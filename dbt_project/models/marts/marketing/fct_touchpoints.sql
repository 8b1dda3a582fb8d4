{#
    Every marketing touch of a customer:
      - session           a visit (fct_sessions) not from a paid channel: UTM-tagged visits, and
                          organic / referral / direct visits (channel from the channel_mapping seed);
      - ad_click          a visit from a paid channel (the ad platforms export no click events, so
                          the click is the visit it started);
      - email_click       a `clicked` event of the ESP;
      - webinar_attendance a webinar registration (CRM system `webinar`) marked attended, at the
                          webinar's date and var mos__marketing_webinar_start_time (UTC).
    customer_id comes from dim_customer_identity_map (device, user id, email or CRM record); touches
    whose identifier is not in the map keep a null customer_id and are never credited.
    Region: the campaign's region when it targets one, else the customer's region, else `unknown`.
    Incremental by touch_date: every row is computed, only the dates whose rows changed (or in the lookback
    window) are written (macros/incremental/date_partitions.sql, changed_dates).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=delete_insert_strategy(),
        unique_key='touch_date',
        on_schema_change='fail',
    )
}}
{%- set paid_channels = var('mos__marketing_platform_channels').values() | list %}

with

sessions as (

    select * from {{ ref('fct_sessions') }}

),

email_events as (

    select * from {{ ref('stg_esp__email_events') }}

),

recipients as (

    select * from {{ ref('int_marketing__email_recipients') }}

),

webinar_contacts as (

    select * from {{ ref('stg_webinar__contacts') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

campaigns as (

    select * from {{ ref('int_marketing__campaigns') }}

),

customer_regions as (

    select * from {{ ref('int_marketing__customer_regions') }}

),

email_regions as (

    select * from {{ ref('int_marketing__email_regions') }}

),

campaign_lookup as (

    -- utm_campaign may carry the campaign id or its name
    select
        lower(campaign_id) as lookup_key,
        campaign_id,
        1 as lookup_rank
    from campaigns
    union all
    select
        lower(campaign_name) as lookup_key,
        campaign_id,
        2 as lookup_rank
    from campaigns
    where campaign_name is not null

),

best_campaign_lookup_ranked as (

    select
        lookup_key,
        campaign_id,
        row_number() over (partition by lookup_key order by lookup_rank, campaign_id) as row_rank
    from campaign_lookup

),

best_campaign_lookup as (

    select
        lookup_key,
        campaign_id
    from best_campaign_lookup_ranked
    where row_rank = 1

),

session_touches as (

    select
        'session:' || sessions.session_id as touch_key,
        case
            when sessions.channel in ({{ quoted_list(paid_channels) }}) then 'ad_click'
            else 'session'
        end as touch_type,
        sessions.session_start_at as touched_at,
        sessions.channel,
        sessions.utm_source,
        sessions.utm_medium,
        sessions.utm_campaign,
        sessions.utm_content,
        best_campaign_lookup.campaign_id,
        cast(null as {{ dbt.type_string() }}) as variant_id,
        sessions.session_id,
        cast(null as {{ dbt.type_string() }}) as message_id,
        coalesce(by_device.customer_id, by_user.customer_id) as customer_id,
        cast(null as {{ dbt.type_string() }}) as fallback_region
    from sessions
    left join best_campaign_lookup on lower(trim(sessions.utm_campaign)) = best_campaign_lookup.lookup_key
    left join identity_map as by_device
        on by_device.node_key = case
                when sessions.anonymous_id is not null then 'anon:' || sessions.anonymous_id
                else sessions.device_key
            end
    left join identity_map as by_user on by_user.node_key = 'user:' || sessions.user_id

),

email_clicks as (

    select
        message_id,
        campaign_id,
        variant_id,
        recipient_email,
        min(occurred_at) as clicked_at
    from email_events
    where email_event_type = 'clicked'
    group by message_id, campaign_id, variant_id, recipient_email

),

email_touches as (

    select
        'email_click:' || coalesce(email_clicks.message_id, email_clicks.recipient_email) as touch_key,
        'email_click' as touch_type,
        email_clicks.clicked_at as touched_at,
        coalesce(campaigns.channel, 'email') as channel,
        cast(null as {{ dbt.type_string() }}) as utm_source,
        cast(null as {{ dbt.type_string() }}) as utm_medium,
        cast(null as {{ dbt.type_string() }}) as utm_campaign,
        cast(null as {{ dbt.type_string() }}) as utm_content,
        email_clicks.campaign_id,
        email_clicks.variant_id,
        cast(null as {{ dbt.type_string() }}) as session_id,
        email_clicks.message_id,
        email_regions.customer_id,
        email_regions.region as fallback_region
    from email_clicks
    left join campaigns on email_clicks.campaign_id = campaigns.campaign_id
    left join recipients on email_clicks.recipient_email = recipients.recipient_email
    left join email_regions on recipients.email_match_key = email_regions.email_match_key

),

webinar_touches as (

    select
        'webinar:' || webinar_contacts.source_record_id as touch_key,
        'webinar_attendance' as touch_type,
        cast(
            cast(
                {{ safe_cast(dbt.split_part('webinar_contacts.webinar_id', "'wb-'", 2), 'date') }}
                as {{ dbt.type_string() }}
            )
            || ' {{ var("mos__marketing_webinar_start_time") }}' as {{ dbt.type_timestamp() }}
        ) as touched_at,
        'webinar' as channel,
        cast(null as {{ dbt.type_string() }}) as utm_source,
        cast(null as {{ dbt.type_string() }}) as utm_medium,
        cast(null as {{ dbt.type_string() }}) as utm_campaign,
        webinar_contacts.webinar_id as utm_content,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        cast(null as {{ dbt.type_string() }}) as variant_id,
        cast(null as {{ dbt.type_string() }}) as session_id,
        cast(null as {{ dbt.type_string() }}) as message_id,
        identity_map.customer_id,
        cast(null as {{ dbt.type_string() }}) as fallback_region
    from webinar_contacts
    left join identity_map
        on
            webinar_contacts.source_system = identity_map.source_system
            and webinar_contacts.source_record_id = identity_map.source_record_id
            and identity_map.node_type = 'crm'
    where webinar_contacts.is_attended

),

touches as (

    select * from session_touches
    union all
    select * from email_touches
    union all
    select * from webinar_touches

),

final as (

    select
        -- keys
        {{ surrogate_key(['touches.touch_key']) }} as touchpoint_id,
        touches.customer_id,
        touches.session_id,
        touches.message_id,
        touches.campaign_id,
        touches.variant_id,

        -- dimensions
        touches.touch_type,
        touches.channel,
        touches.utm_source,
        touches.utm_medium,
        touches.utm_campaign,
        touches.utm_content,
        coalesce(campaigns.campaign_region, customer_regions.region, touches.fallback_region, 'unknown') as region,

        -- timestamps
        touches.touched_at,
        cast(touches.touched_at as date) as touch_date

    from touches
    left join campaigns on touches.campaign_id = campaigns.campaign_id
    left join customer_regions on touches.customer_id = customer_regions.customer_id
    where touches.touched_at is not null

)

{{ select_changed_dates('final', 'touch_date') }}
