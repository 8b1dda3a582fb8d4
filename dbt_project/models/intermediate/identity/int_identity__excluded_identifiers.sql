{#
    Identifiers kept out of the identity graph, so that a shared or placeholder value cannot merge
    different people. Two guards:

    - blocked_value: the value is in the identity_blocked_values seed (test@test.com, 0000000000, ...).
      Phones match on their E.164 form, on it without the `+`, or on the digits as a CRM record wrote them.
    - cardinality_cap: the identifier is linked to more people than var
      mos__identity_max_people_per_identifier allows for its type. People are counted through
      people-level ids: user ids (directly, or through an order that carries both) and CRM match
      clusters (through the CRM records holding the identifier). One person normally has one user id
      and one CRM cluster, so linked_people = the larger of the two distinct counts, not their sum.

    Identifiers here appear in no edge and no node; every one is listed with the ids it linked.
#}
{%- set caps = var('mos__identity_max_people_per_identifier') %}
{%- set example_limit = 5 %}

with

candidates as (

    select * from {{ ref('int_identity__edge_candidates') }}

),

crm_matches as (

    select * from {{ ref('int_crm_contacts__matched') }}

),

crm_contacts as (

    select * from {{ ref('int_crm_contacts__normalised') }}

),

blocked_values as (

    select * from {{ ref('identity_blocked_values') }}

),

directed as (

    select
        node_key_a as node_key,
        node_key_b as linked_node_key,
        edge_type
    from candidates

    union all

    select
        node_key_b as node_key,
        node_key_a as linked_node_key,
        edge_type
    from candidates

),

identifiers as (

    select distinct
        node_key,
        case {{ dbt.split_part('node_key', "':'", 1) }}
            when 'email' then 'email'
            when 'phone' then 'phone'
            when 'anon' then 'anonymous_id'
            when 'user' then 'user_id'
        end as identifier_type,
        substr(node_key, {{ dbt.position("':'", 'node_key') }} + 1) as identifier_value
    from directed
    where {{ dbt.split_part('node_key', "':'", 1) }} in ('email', 'phone', 'anon', 'user')

),

phone_spellings as (

    -- digits as written in CRM records, so that a seed row in raw-digit form also blocks the E.164
    select distinct
        'phone:' || phone_e164 as node_key,
        phone_digits as identifier_value
    from crm_contacts
    where phone_e164 is not null and phone_digits is not null

),

blocked as (

    select distinct identifiers.node_key
    from identifiers
    inner join blocked_values
        on
            identifiers.identifier_type = blocked_values.identifier_type
            and (
                identifiers.identifier_value = blocked_values.value
                or (
                    identifiers.identifier_type = 'phone'
                    and substr(identifiers.identifier_value, 2) = blocked_values.value
                )
            )

    union

    select phone_spellings.node_key
    from phone_spellings
    inner join blocked_values
        on
            blocked_values.identifier_type = 'phone'
            and phone_spellings.identifier_value = blocked_values.value

),

blocked_users as (

    select blocked.node_key
    from blocked
    where blocked.node_key like 'user:%'

),

order_users as (

    select
        case when node_key_a like 'order:%' then node_key_a else node_key_b end as order_node_key,
        case when node_key_a like 'user:%' then node_key_a else node_key_b end as user_node_key
    from candidates
    where edge_type = 'order_user'

),

people_links as (

    -- user ids linked directly (identify, identify_email)
    select
        directed.node_key,
        'user' as people_id_type,
        directed.linked_node_key as people_id
    from directed
    where directed.linked_node_key like 'user:%'

    union all

    -- user ids of the orders the identifier is on (order_email + order_user)
    select
        directed.node_key,
        'user' as people_id_type,
        order_users.user_node_key as people_id
    from directed
    inner join order_users
        on directed.linked_node_key = order_users.order_node_key

    union all

    -- CRM match clusters of the records holding the identifier (crm_email, crm_phone)
    select
        directed.node_key,
        'crm_cluster' as people_id_type,
        'crm_cluster:' || coalesce(crm_matches.match_cluster_key, substr(directed.linked_node_key, 5)) as people_id
    from directed
    left join crm_matches
        on substr(directed.linked_node_key, 5) = crm_matches.contact_record_key
    where directed.edge_type in ('crm_email', 'crm_phone')

),

distinct_people_links as (

    select distinct
        people_links.node_key,
        people_links.people_id_type,
        people_links.people_id
    from people_links
    left join blocked_users
        on people_links.people_id = blocked_users.node_key
    where blocked_users.node_key is null

),

people_counts as (

    select
        node_key,
        sum(case when people_id_type = 'user' then 1 else 0 end) as linked_user_ids,
        sum(case when people_id_type = 'crm_cluster' then 1 else 0 end) as linked_crm_clusters
    from distinct_people_links
    group by node_key

),

examples as (

    select
        node_key,
        people_id,
        row_number() over (partition by node_key order by people_id) as example_rank
    from distinct_people_links

),

example_lists as (

    select
        node_key,
        {{ dbt.listagg('people_id', "', '", 'order by people_id') }} as example_linked_ids
    from examples
    where example_rank <= {{ example_limit }}
    group by node_key

),

assessed as (

    select
        identifiers.node_key,
        identifiers.identifier_type,
        identifiers.identifier_value,
        coalesce(people_counts.linked_user_ids, 0) as linked_user_ids,
        coalesce(people_counts.linked_crm_clusters, 0) as linked_crm_clusters,
        case
            {%- for identifier_type, cap in caps.items() %}
            when identifiers.identifier_type = '{{ identifier_type }}' then {{ cap | int }}
            {%- endfor %}
        end as max_people,
        blocked.node_key is not null as is_blocked
    from identifiers
    left join people_counts
        on identifiers.node_key = people_counts.node_key
    left join blocked
        on identifiers.node_key = blocked.node_key

),

final as (

    select
        -- keys
        assessed.node_key,

        -- dimensions
        assessed.identifier_type,
        assessed.identifier_value,
        case
            when assessed.is_blocked then 'blocked_value'
            else 'cardinality_cap'
        end as reason,
        example_lists.example_linked_ids,

        -- metrics
        case
            when assessed.linked_user_ids > assessed.linked_crm_clusters then assessed.linked_user_ids
            else assessed.linked_crm_clusters
        end as linked_people,
        assessed.linked_user_ids,
        assessed.linked_crm_clusters,
        assessed.max_people

    from assessed
    left join example_lists
        on assessed.node_key = example_lists.node_key
    where
        assessed.is_blocked
        or assessed.linked_user_ids > assessed.max_people
        or assessed.linked_crm_clusters > assessed.max_people

)

select * from final
