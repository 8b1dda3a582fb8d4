{#-
    Conversion of assigned units against the persistent holdout, by experiment_id × variant_id ×
    region, from experiments.assignments (written by the experiments assets; while it does not
    exist this mart is empty). A unit is a recipient address (trimmed, lower-cased); its customer
    comes from dim_customer_identity_map through the address's email match key, its region from
    int_marketing__email_regions, else the customer's region, else `unknown`.
    Each unit is followed from the day it was first assigned (first_assigned_date, 00:00 UTC) for
    var mos__marketing_variant_conversion_window_days days: a KPI conversion (a type in var
    mos__marketing_kpi_conversion_types, of the unit's customer or of the customer of the device
    that sent it) in [first_assigned_date, first_assigned_date + window) converts the unit.
    Units first assigned after the last day with data (`data_through_date`) cannot be observed yet
    and are counted in assigned_units only. Intention to treat: every observed unit counts in its
    arm whether or not it was sent anything; sent_units says how many were sent the campaign on or
    after their first assignment (for the holdout this must be 0, or the holdout is contaminated).
-#}
{%- set kpi_types = var('mos__marketing_kpi_conversion_types') %}
{%- set window_days = var('mos__marketing_variant_conversion_window_days') | int %}
{%- set assignment_columns = {
    'experiment_id': 'varchar', 'unit_id': 'varchar', 'variant_id': 'varchar', 'is_holdout': 'boolean',
    'first_assigned_date': 'date'
} %}

with

assignments as (

    select *
    from {{ optional_source('experiments', 'assignments', assignment_columns) }} as assignment_rows

),

email_events as (

    select * from {{ ref('stg_esp__email_events') }}

),

conversions as (

    select * from {{ ref('fct_conversions') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

email_regions as (

    select * from {{ ref('int_marketing__email_regions') }}

),

customer_regions as (

    select * from {{ ref('int_marketing__customer_regions') }}

),

data_through as (

    select
        cast(
            greatest(
                coalesce((select max(occurred_at) from email_events), cast('1900-01-01' as timestamp)),
                coalesce((select max(converted_at) from conversions), cast('1900-01-01' as timestamp))
            ) as date
        ) as data_through_date

),

units as (

    select
        assignments.experiment_id,
        assignments.unit_id,
        assignments.variant_id,
        assignments.is_holdout,
        assignments.first_assigned_date,
        cast(assignments.first_assigned_date as timestamp) as window_start_at,
        {{ dbt.dateadd('day', window_days, 'cast(assignments.first_assigned_date as timestamp)') }} as window_end_at,
        {{ email_match_key('assignments.unit_id') }} as email_match_key
    from assignments
    where assignments.unit_id is not null

),

unit_customers as (

    select
        units.*,
        identity_map.customer_id,
        coalesce(email_regions.region, customer_regions.region, 'unknown') as region,
        units.first_assigned_date <= data_through.data_through_date as is_observed
    from units
    cross join data_through
    left join identity_map
        on identity_map.node_key = 'email:' || units.email_match_key
    left join email_regions
        on units.email_match_key = email_regions.email_match_key
    left join customer_regions
        on identity_map.customer_id = customer_regions.customer_id

),

unit_sends as (

    select distinct
        unit_customers.experiment_id,
        unit_customers.unit_id
    from unit_customers
    inner join email_events
        on
            unit_customers.experiment_id = email_events.campaign_id
            and unit_customers.unit_id = {{ normalise_email('email_events.recipient_email') }}
            and email_events.email_event_type = 'sent'
            and unit_customers.window_start_at <= email_events.occurred_at

),

kpi_conversion_customers as (

    -- a conversion counts for its customer and for the customer of the device that sent it
    {{ kpi_conversion_customers('conversions', kpi_types) }}

),

unit_conversions as (

    select
        unit_customers.experiment_id,
        unit_customers.unit_id,
        count(distinct kpi_conversion_customers.conversion_id) as conversions
    from unit_customers
    inner join kpi_conversion_customers
        on
            unit_customers.customer_id = kpi_conversion_customers.customer_id
            and unit_customers.window_start_at <= kpi_conversion_customers.converted_at
            and unit_customers.window_end_at > kpi_conversion_customers.converted_at
    group by unit_customers.experiment_id, unit_customers.unit_id

),

arm_totals as (

    select
        unit_customers.experiment_id,
        unit_customers.variant_id,
        unit_customers.region,
        max(case when unit_customers.is_holdout then 1 else 0 end) = 1 as is_holdout,
        count(*) as assigned_units,
        count(case when unit_customers.is_observed then 1 end) as observed_units,
        count(case when unit_customers.is_observed and unit_customers.customer_id is not null then 1 end)
            as customer_units,
        count(case when unit_customers.is_observed and unit_sends.unit_id is not null then 1 end) as sent_units,
        count(case when unit_customers.is_observed and unit_conversions.conversions > 0 then 1 end)
            as converted_units,
        coalesce(sum(case when unit_customers.is_observed then unit_conversions.conversions end), 0) as conversions,
        min(unit_customers.first_assigned_date) as first_assigned_date,
        max(unit_customers.first_assigned_date) as last_assigned_date
    from unit_customers
    left join unit_sends
        on
            unit_customers.experiment_id = unit_sends.experiment_id
            and unit_customers.unit_id = unit_sends.unit_id
    left join unit_conversions
        on
            unit_customers.experiment_id = unit_conversions.experiment_id
            and unit_customers.unit_id = unit_conversions.unit_id
    group by unit_customers.experiment_id, unit_customers.variant_id, unit_customers.region

),

final as (

    select
        -- keys
        {{ surrogate_key(['arm_totals.experiment_id', 'arm_totals.variant_id', 'arm_totals.region']) }}
            as experiment_holdout_id,
        arm_totals.experiment_id,
        arm_totals.variant_id,
        arm_totals.region,

        -- dimensions
        arm_totals.is_holdout,

        -- metrics
        cast(arm_totals.assigned_units as bigint) as assigned_units,
        cast(arm_totals.observed_units as bigint) as observed_units,
        cast(arm_totals.customer_units as bigint) as customer_units,
        cast(arm_totals.sent_units as bigint) as sent_units,
        cast(arm_totals.converted_units as bigint) as converted_units,
        cast(arm_totals.conversions as bigint) as conversions,
        cast(
            cast(arm_totals.converted_units as double) / nullif(arm_totals.observed_units, 0) as double
        ) as cvr,
        cast({{ window_days }} as integer) as window_days,

        -- timestamps
        arm_totals.first_assigned_date,
        arm_totals.last_assigned_date,
        data_through.data_through_date

    from arm_totals
    cross join data_through

)

select * from final
