{#-
    Every node of the identity graph, linked or not, so that every CRM record, device, user id and
    order gets a component: all CRM records, anonymous ids, user ids (events and orders), orders,
    and the emails / phones that some record, identify call or order carries. Identifiers in
    int_identity__excluded_identifiers are left out (they belong to no customer).
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

    -- emails and phones exist through the links that carry them
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
    where
        endpoints.node_key like 'email:%'
        or endpoints.node_key like 'phone:%'

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
