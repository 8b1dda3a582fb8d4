{#-
    The members every ad-platform audience should hold (Google Customer Match and Meta Custom
    Audiences read the same rows): the lookalike tiers up to max_tier % of each audience in
    ml.lookalike_scores (seed members are never scored, so never in a lookalike list) whose next best
    action (decisions.next_best_action, latest day) is paid retargeting, the `retargeting` audience of
    everyone whose next best action today is paid retargeting (with their best lookalike tier), and the
    current customers (lifecycle stages customer_stages) for exclusion targeting. Only customers
    with an email address or a phone and granted consent for ad personalisation. Identifiers are
    raw here; the delivery normalises and hashes them per platform, so no export holds them raw.
-#}
{%- set ads = var('mos__activation_sync_models')['sync_ads__audience_members'] -%}
{%- set decision_columns = {'customer_id': 'varchar', 'decision_date': 'date', 'action': 'varchar'} -%}
{%- set score_columns = {
    'customer_id': 'varchar', 'audience': 'varchar', 'tier': 'integer', 'percentile': 'double'
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

lookalike_scores as (

    select * from {{ optional_source('ml', 'lookalike_scores', score_columns) }} as score_rows

),

lookalike_members as (

    select
        customer_id,
        'lookalike_' || audience || '_top{{ ads["lookalike_max_tier"] }}' as audience_name,
        'lookalike' as member_source,
        tier as lookalike_tier
    from lookalike_scores
    where
        tier is not null
        and tier <= {{ ads['lookalike_max_tier'] }}
        and {{ decision_filter('customer_id', ['paid_retargeting']) }}

),

customer_members as (

    select
        customer_id,
        'customers' as audience_name,
        'lifecycle' as member_source,
        cast(null as integer) as lookalike_tier
    from lifecycle
    where lifecycle_stage in ({{ quoted_list(ads['customer_stages']) }})

),

retargeting_members as (

    -- everyone whose next best action today is paid retargeting: the audience the decision sends to
    select
        decided.customer_id,
        'retargeting' as audience_name,
        'decision' as member_source,
        min(lookalike_scores.tier) as lookalike_tier
    from {{ optional_source('decisions', 'next_best_action', decision_columns) }} as decided
    left join lookalike_scores
        on decided.customer_id = lookalike_scores.customer_id
    where
        decided.action = 'paid_retargeting'
        and decided.decision_date = (
            select max(latest.decision_date)
            from {{ optional_source('decisions', 'next_best_action', decision_columns) }} as latest
        )
    group by decided.customer_id

),

members as (

    select * from lookalike_members
    union all
    select * from retargeting_members
    union all
    select * from customer_members

),

final as (

    select
        -- keys
        members.audience_name || ':' || members.customer_id as audience_member_id,
        members.audience_name,
        members.customer_id,

        -- dimensions
        members.member_source,
        members.lookalike_tier,
        contacts.email_address,
        contacts.phone_e164,
        contacts.country_code,
        consent.status as consent_status

    from members
    inner join contacts
        on members.customer_id = contacts.customer_id
    inner join consent
        on
            members.customer_id = consent.customer_id
            and consent.purpose = '{{ ads["consent_purpose"] }}'
    where consent.status = 'granted'

)

select * from final
