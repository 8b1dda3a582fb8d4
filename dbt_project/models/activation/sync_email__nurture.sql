{#-
    The nurture email each customer should receive: customers in the nurture lifecycle stages with
    an email address and granted consent for the campaign's purpose whose next best action
    (decisions.next_best_action, latest day; any, before decisioning ran) is the nurture email, each with one variant of the
    campaign. When experiments.assignments exists it decides (the customer's address is the unit;
    holdout and unassigned units are left out). Before it exists, a deterministic hash of
    (campaign, address) keeps holdout_share of the audience out and spreads the rest evenly over
    the campaign's non-holdout variants (assignment_source says which rule decided).
-#}
{%- set nurture = var('mos__activation_sync_models')['sync_email__nurture'] -%}
{%- set campaign_id = nurture['campaign_id'] -%}
{%- set holdout_share = nurture['holdout_share'] -%}
{%- set use_assignments = source_exists('experiments', 'assignments') -%}
{%- set assignment_columns = {
    'experiment_id': 'varchar', 'unit_id': 'varchar', 'variant_id': 'varchar', 'is_holdout': 'boolean'
} -%}

with

contacts as (

    select * from {{ ref('int_activation__customer_contacts') }}

),

lifecycle as (

    select * from {{ ref('dim_customer_lifecycle') }}

),

consent as (

    select * from {{ ref('dim_customer_consents') }}

),

campaign_variants as (

    select * from {{ ref('stg_marketing__campaign_variants') }}

),

arms as (

    select
        variant_id,
        min(variant_name) as variant_name,
        row_number() over (order by variant_id) - 1 as arm_index
    from campaign_variants
    where
        campaign_id = '{{ campaign_id }}'
        and variant_id is not null
        and not coalesce(is_holdout, false)
    group by variant_id

),

audience as (

    select
        contacts.customer_id,
        contacts.email_address,
        lower(trim(contacts.email_address)) as unit_id,
        contacts.first_name,
        contacts.company,
        lifecycle.lifecycle_stage,
        consent.status as consent_status
    from contacts
    inner join lifecycle
        on contacts.customer_id = lifecycle.customer_id
    inner join consent
        on
            contacts.customer_id = consent.customer_id
            and consent.purpose = '{{ nurture["consent_purpose"] }}'
    where
        contacts.email_address is not null
        and consent.status = 'granted'
        and lifecycle.lifecycle_stage in ({{ quoted_list(nurture['lifecycle_stages']) }})
        and {{ decision_filter('contacts.customer_id', ['nurture_email']) }}

),

{% if use_assignments %}
assignments as (

    select * from {{ optional_source('experiments', 'assignments', assignment_columns) }} as assignment_rows

),

assigned as (

    select
        audience.*,
        assignments.variant_id,
        'experiments.assignments' as assignment_source
    from audience
    inner join assignments
        on
            assignments.experiment_id = '{{ campaign_id }}'
            and audience.unit_id = assignments.unit_id
    where not assignments.is_holdout

),
{% else %}
arm_counts as (

    select count(*) as arm_count from arms

),

bucketed as (

    select
        audience.*,
        {{ hash_bucket("'" ~ campaign_id ~ ":' || audience.unit_id") }} as bucket
    from audience

),

bucketed_arms as (

    select
        bucketed.*,
        cast(
            floor((bucketed.bucket - {{ holdout_share }}) / (1 - {{ holdout_share }}) * arm_counts.arm_count)
            as integer
        ) as arm_index
    from bucketed
    cross join arm_counts
    where bucketed.bucket >= {{ holdout_share }}

),

assigned as (

    select
        bucketed_arms.customer_id,
        bucketed_arms.email_address,
        bucketed_arms.unit_id,
        bucketed_arms.first_name,
        bucketed_arms.company,
        bucketed_arms.lifecycle_stage,
        bucketed_arms.consent_status,
        arms.variant_id,
        'placeholder_hash' as assignment_source
    from bucketed_arms
    inner join arms
        on bucketed_arms.arm_index = arms.arm_index

),
{% endif %}

final as (

    select
        -- keys
        assigned.customer_id,

        -- dimensions
        '{{ campaign_id }}' as campaign_id,
        assigned.variant_id,
        arms.variant_name,
        assigned.assignment_source,
        assigned.email_address,
        assigned.first_name,
        assigned.company,
        assigned.lifecycle_stage,
        assigned.consent_status

    from assigned
    left join arms
        on assigned.variant_id = arms.variant_id

)

select * from final
