{#
    Email variant results by campaign_id × variant_id × region (the recipient's region): recipients,
    sends, clicks, and recipients who converted (a conversion of a type in var
    mos__marketing_kpi_conversion_types within var mos__marketing_variant_conversion_window_days
    after their first send of the variant, whatever the attribution). cvr = converted recipients /
    recipients. cvr_lift = (cvr − holdout cvr) / holdout cvr against the campaign's holdout variant
    (campaigns.is_holdout) in the same region: null when there is no holdout row with recipients,
    or its cvr is 0. Holdout recipients are never sent anything, so they appear only once an
    assignment source reports them; until then cvr_lift is null.
#}
{%- set kpi_types = var('mos__marketing_kpi_conversion_types') %}
{%- set window_days = var('mos__marketing_variant_conversion_window_days') | int %}

with

email_events as (

    select * from {{ ref('stg_esp__email_events') }}

),

email_recipients as (

    select * from {{ ref('int_marketing__email_recipients') }}

),

campaign_variants as (

    select * from {{ ref('stg_marketing__campaign_variants') }}

),

conversions as (

    select * from {{ ref('fct_conversions') }}

),

email_regions as (

    select * from {{ ref('int_marketing__email_regions') }}

),

recipient_events as (

    select
        email_events.campaign_id,
        email_events.variant_id,
        email_events.email_event_type,
        email_events.occurred_at,
        email_events.message_id,
        coalesce(
            email_regions.customer_id,
            'email:' || email_recipients.email
        ) as recipient_key,
        email_regions.customer_id,
        coalesce(email_regions.region, 'unknown') as region
    from email_events
    left join email_recipients on email_events.recipient_email = email_recipients.recipient_email
    left join email_regions on email_recipients.email_match_key = email_regions.email_match_key
    where email_events.campaign_id is not null

),

recipients as (

    select
        campaign_id,
        variant_id,
        region,
        recipient_key,
        max(customer_id) as customer_id,
        min(case when email_event_type = 'sent' then occurred_at end) as first_sent_at,
        count(distinct case when email_event_type = 'sent' then message_id end) as sends,
        count(distinct case when email_event_type = 'clicked' then message_id end) as clicks
    from recipient_events
    group by campaign_id, variant_id, region, recipient_key

),

kpi_conversion_customers as (

    -- a conversion counts for its customer and for the customer of the device that sent it
    {{ kpi_conversion_customers('conversions', kpi_types) }}

),

recipient_conversions as (

    select
        recipients.campaign_id,
        recipients.variant_id,
        recipients.region,
        recipients.recipient_key,
        count(distinct kpi_conversion_customers.conversion_id) as conversions
    from recipients
    inner join kpi_conversion_customers
        on
            recipients.customer_id = kpi_conversion_customers.customer_id
            and recipients.first_sent_at <= kpi_conversion_customers.converted_at
            and kpi_conversion_customers.converted_at
            <= {{ dbt.dateadd('day', window_days, 'recipients.first_sent_at') }}
    group by recipients.campaign_id, recipients.variant_id, recipients.region, recipients.recipient_key

),

variant_totals as (

    select
        recipients.campaign_id,
        recipients.variant_id,
        recipients.region,
        count(*) as recipients,
        sum(recipients.sends) as sends,
        sum(recipients.clicks) as clicks,
        count(recipient_conversions.recipient_key) as converted_recipients,
        coalesce(sum(recipient_conversions.conversions), 0) as conversions
    from recipients
    left join recipient_conversions
        on
            recipients.campaign_id = recipient_conversions.campaign_id
            and coalesce(recipients.variant_id, '') = coalesce(recipient_conversions.variant_id, '')
            and recipients.region = recipient_conversions.region
            and recipients.recipient_key = recipient_conversions.recipient_key
    group by recipients.campaign_id, recipients.variant_id, recipients.region

),

with_rates as (

    select
        variant_totals.*,
        coalesce(campaign_variants.is_holdout, false) as is_holdout,
        cast(variant_totals.converted_recipients as double)
        / nullif(variant_totals.recipients, 0) as cvr,
        cast(variant_totals.clicks as double) / nullif(variant_totals.sends, 0) as click_rate
    from variant_totals
    left join campaign_variants
        on
            variant_totals.campaign_id = campaign_variants.campaign_id
            and coalesce(variant_totals.variant_id, '') = coalesce(campaign_variants.variant_id, '')

),

holdouts_ranked as (

    select
        campaign_id,
        region,
        cvr as holdout_cvr,
        row_number() over (partition by campaign_id, region order by recipients desc, variant_id asc) as row_rank
    from with_rates
    where is_holdout

),

holdouts as (

    select
        campaign_id,
        region,
        holdout_cvr
    from holdouts_ranked
    where row_rank = 1

),

final as (

    select
        -- keys
        {{ surrogate_key(['with_rates.campaign_id', 'with_rates.variant_id', 'with_rates.region']) }}
            as variant_performance_id,
        with_rates.campaign_id,
        with_rates.variant_id,
        with_rates.region,

        -- dimensions
        with_rates.is_holdout,

        -- metrics
        cast(with_rates.recipients as bigint) as recipients,
        cast(with_rates.sends as bigint) as sends,
        cast(with_rates.clicks as bigint) as clicks,
        cast(with_rates.converted_recipients as bigint) as converted_recipients,
        cast(with_rates.conversions as bigint) as conversions,
        cast(with_rates.click_rate as double) as click_rate,
        cast(with_rates.cvr as double) as cvr,
        cast(holdouts.holdout_cvr as double) as holdout_cvr,
        cast(
            case
                when not with_rates.is_holdout
                    then (with_rates.cvr - holdouts.holdout_cvr) / nullif(holdouts.holdout_cvr, 0)
            end as double
        ) as cvr_lift

    from with_rates
    left join holdouts
        on
            with_rates.campaign_id = holdouts.campaign_id
            and with_rates.region = holdouts.region

)

select * from final
