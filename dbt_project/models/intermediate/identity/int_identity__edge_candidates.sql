{#
    Every link the sources assert between identity nodes, before the over-merge guards
    (int_identity__excluded_identifiers decides which identifiers are dropped; int_identity__edges
    is what remains). One row per undirected edge and type, node_key_a < node_key_b.

    Node keys: crm:<contact_record_key>, anon:<anonymous_id>, user:<user_id>,
    email:<email match key>, phone:<E.164>, order:<order_id>.
#}
with

crm_contacts as (

    select * from {{ ref('int_crm_contacts__normalised') }}

),

crm_matches as (

    select * from {{ ref('int_crm_contacts__matched') }}

),

segment_identities as (

    select * from {{ ref('int_segment_identities__grouped') }}

),

orders as (

    select * from {{ ref('stg_commerce__orders') }}

),

order_events as (

    select * from {{ ref('int_segment_order_events__grouped') }}

),

email_click_devices as (

    select * from {{ ref('int_email_clicks__landing_devices') }}

),

order_identifiers as (

    select
        order_id,
        user_id,
        {{ email_match_key(normalise_email('email')) }} as email_match_key,
        created_at
    from orders

),

links as (

    -- a CRM record and its email / phone
    select
        crm_contacts.node_key as from_node_key,
        'email:' || crm_contacts.email_match_key as to_node_key,
        'crm_email' as edge_type,
        crm_contacts.source_system as evidence,
        cast(null as {{ dbt.type_float() }}) as match_probability,
        1 as observation_count,
        coalesce(crm_contacts.created_at, crm_contacts.updated_at, crm_contacts.loaded_at) as first_seen_at,
        coalesce(crm_contacts.updated_at, crm_contacts.created_at, crm_contacts.loaded_at) as last_seen_at
    from crm_contacts
    where crm_contacts.email_match_key is not null

    union all

    select
        crm_contacts.node_key as from_node_key,
        'phone:' || crm_contacts.phone_e164 as to_node_key,
        'crm_phone' as edge_type,
        crm_contacts.source_system as evidence,
        cast(null as {{ dbt.type_float() }}) as match_probability,
        1 as observation_count,
        coalesce(crm_contacts.created_at, crm_contacts.updated_at, crm_contacts.loaded_at) as first_seen_at,
        coalesce(crm_contacts.updated_at, crm_contacts.created_at, crm_contacts.loaded_at) as last_seen_at
    from crm_contacts
    where crm_contacts.phone_e164 is not null

    union all

    -- a CRM record and the representative of its probabilistic match cluster
    select
        'crm:' || crm_matches.contact_record_key as from_node_key,
        'crm:' || crm_matches.match_cluster_key as to_node_key,
        'crm_match' as edge_type,
        cast(round(cast(crm_matches.best_match_probability as {{ dbt.type_numeric() }}), 4) as {{ dbt.type_string() }})
            as evidence,
        cast(crm_matches.best_match_probability as {{ dbt.type_float() }}) as match_probability,
        1 as observation_count,
        coalesce(crm_contacts.created_at, crm_contacts.updated_at, crm_contacts.loaded_at) as first_seen_at,
        coalesce(crm_contacts.updated_at, crm_contacts.created_at, crm_contacts.loaded_at) as last_seen_at
    from crm_matches
    left join crm_contacts
        on crm_matches.contact_record_key = crm_contacts.contact_record_key
    where crm_matches.match_cluster_key != crm_matches.contact_record_key

    union all

    -- a device and the user id it identified as (events carrying both)
    select
        'anon:' || anonymous_id as from_node_key,
        'user:' || user_id as to_node_key,
        'identify' as edge_type,
        'segment' as evidence,
        cast(null as {{ dbt.type_float() }}) as match_probability,
        event_count as observation_count,
        first_seen_at,
        last_seen_at
    from segment_identities
    where anonymous_id is not null and user_id is not null

    union all

    -- a user id and the email of its identify traits
    select
        'user:' || user_id as from_node_key,
        'email:' || email_match_key as to_node_key,
        'identify_email' as edge_type,
        'segment' as evidence,
        cast(null as {{ dbt.type_float() }}) as match_probability,
        identify_count as observation_count,
        first_seen_at,
        last_seen_at
    from segment_identities
    where user_id is not null and email_match_key is not null

    union all

    -- a device that landed through a tracked email link and the recipient of that email
    select
        'anon:' || anonymous_id as from_node_key,
        'email:' || email_match_key as to_node_key,
        'email_click' as edge_type,
        'esp' as evidence,
        cast(null as {{ dbt.type_float() }}) as match_probability,
        landing_count as observation_count,
        first_seen_at,
        last_seen_at
    from email_click_devices
    where recipient_count = 1

    union all

    -- an order and its buyer's email / user id
    select
        'order:' || order_id as from_node_key,
        'email:' || email_match_key as to_node_key,
        'order_email' as edge_type,
        'orders' as evidence,
        cast(null as {{ dbt.type_float() }}) as match_probability,
        1 as observation_count,
        created_at as first_seen_at,
        created_at as last_seen_at
    from order_identifiers
    where email_match_key is not null

    union all

    select
        'order:' || order_id as from_node_key,
        'user:' || user_id as to_node_key,
        'order_user' as edge_type,
        'orders' as evidence,
        cast(null as {{ dbt.type_float() }}) as match_probability,
        1 as observation_count,
        created_at as first_seen_at,
        created_at as last_seen_at
    from order_identifiers
    where user_id is not null

    union all

    -- an order and the device / user id whose `Order Completed` event reported it
    select
        'order:' || order_id as from_node_key,
        'anon:' || anonymous_id as to_node_key,
        'order_event_device' as edge_type,
        'segment' as evidence,
        cast(null as {{ dbt.type_float() }}) as match_probability,
        event_count as observation_count,
        first_seen_at,
        last_seen_at
    from order_events
    where anonymous_id is not null

    union all

    -- (only when the order file does not already name that user: one edge per node pair)
    select
        'order:' || order_events.order_id as from_node_key,
        'user:' || order_events.user_id as to_node_key,
        'order_event_user' as edge_type,
        'segment' as evidence,
        cast(null as {{ dbt.type_float() }}) as match_probability,
        order_events.event_count as observation_count,
        order_events.first_seen_at,
        order_events.last_seen_at
    from order_events
    left join order_identifiers
        on
            order_events.order_id = order_identifiers.order_id
            and order_events.user_id = order_identifiers.user_id
    where order_events.user_id is not null and order_identifiers.order_id is null

),

ordered as (

    select
        case when from_node_key < to_node_key then from_node_key else to_node_key end as node_key_a,
        case when from_node_key < to_node_key then to_node_key else from_node_key end as node_key_b,
        edge_type,
        evidence,
        match_probability,
        observation_count,
        first_seen_at,
        last_seen_at
    from links
    where from_node_key != to_node_key

),

final as (

    select
        -- keys
        node_key_a,
        node_key_b,
        edge_type,

        -- dimensions
        min(evidence) as evidence,

        -- metrics
        max(match_probability) as match_probability,
        sum(observation_count) as observation_count,

        -- timestamps
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at

    from ordered
    group by
        node_key_a,
        node_key_b,
        edge_type

)

select * from final
