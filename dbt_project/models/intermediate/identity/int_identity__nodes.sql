{#-
    Every node of the identity graph, linked or not, so that every CRM record, device, user id and
    order gets a component: all CRM records, anonymous ids, user ids (events and orders), orders,
    and the emails / phones that some record, identify call or order carries. The addresses we
    email and the consent subjects (email or user id) are nodes too, so every contact we may
    message has a customer, even one known by nothing else. Identifiers in
    int_identity__excluded_identifiers or the blocked-values seed are left out (they belong to no
    customer).
-#}
with

crm_contacts as (

    select * from {{ ref('int_crm_contacts__normalised') }}

),

segment_identities as (

    select * from {{ ref('int_segment_identities__grouped') }}

),

orders as (

    select * from {{ ref('stg_commerce__orders') }}

),

candidates as (

    select * from {{ ref('int_identity__edge_candidates') }}

),

contact_subjects as (

    select * from {{ ref('int_identity__contact_subjects') }}

),

blocked_values as (

    select * from {{ ref('identity_blocked_values') }}

),

contact_identifiers as (

    -- recipients of our emails and consent subjects: an address (contains '@') or a user id, keyed once each
    -- (int_identity__contact_subjects)
    select
        node_key,
        case when node_key like 'email:%' then 'email' else 'user_id' end as identifier_type,
        substr(node_key, {{ dbt.position("':'", 'node_key') }} + 1) as identifier_value,
        first_seen_at,
        last_seen_at
    from contact_subjects
    where node_key is not null

),

contact_nodes as (

    select
        contact_identifiers.node_key,
        min(contact_identifiers.first_seen_at) as first_seen_at,
        max(contact_identifiers.last_seen_at) as last_seen_at
    from contact_identifiers
    left join blocked_values
        on
            contact_identifiers.identifier_type = blocked_values.identifier_type
            and contact_identifiers.identifier_value = blocked_values.value
    where blocked_values.value is null
    group by contact_identifiers.node_key

),

excluded as (

    select * from {{ ref('int_identity__excluded_identifiers') }}

),

sightings as (

    select
        node_key,
        'crm' as node_type,
        contact_record_key as node_value,
        coalesce(created_at, updated_at, loaded_at) as first_seen_at,
        coalesce(updated_at, created_at, loaded_at) as last_seen_at
    from crm_contacts

    union all

    select
        'anon:' || anonymous_id as node_key,
        'anon' as node_type,
        anonymous_id as node_value,
        first_seen_at,
        last_seen_at
    from segment_identities
    where anonymous_id is not null

    union all

    select
        'user:' || user_id as node_key,
        'user' as node_type,
        user_id as node_value,
        first_seen_at,
        last_seen_at
    from segment_identities
    where user_id is not null

    union all

    select
        'user:' || user_id as node_key,
        'user' as node_type,
        user_id as node_value,
        created_at as first_seen_at,
        created_at as last_seen_at
    from orders
    where user_id is not null

    union all

    select
        'order:' || order_id as node_key,
        'order' as node_type,
        order_id as node_value,
        created_at as first_seen_at,
        created_at as last_seen_at
    from orders

    union all

    -- every end of a link is a node: emails and phones exist only through the links that carry them, and
    -- an order reported by an `Order Completed` event may not be in the orders export (yet, or at all)
    select
        endpoints.node_key,
        {{ dbt.split_part('endpoints.node_key', "':'", 1) }} as node_type,
        substr(endpoints.node_key, {{ dbt.position("':'", 'endpoints.node_key') }} + 1) as node_value,
        endpoints.first_seen_at,
        endpoints.last_seen_at
    from (
        select
            node_key_a as node_key,
            first_seen_at,
            last_seen_at
        from candidates
        union all
        select
            node_key_b as node_key,
            first_seen_at,
            last_seen_at
        from candidates
    ) as endpoints

    union all

    select
        node_key,
        {{ dbt.split_part('node_key', "':'", 1) }} as node_type,
        substr(node_key, {{ dbt.position("':'", 'node_key') }} + 1) as node_value,
        first_seen_at,
        last_seen_at
    from contact_nodes

),

grouped as (

    select
        node_key,
        min(node_type) as node_type,
        min(node_value) as node_value,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from sightings
    group by node_key

),

final as (

    select
        -- keys
        grouped.node_key,

        -- dimensions
        grouped.node_type,
        grouped.node_value,

        -- timestamps
        grouped.first_seen_at,
        grouped.last_seen_at

    from grouped
    left join excluded
        on grouped.node_key = excluded.node_key
    where excluded.node_key is null

)

select * from final
