{#-
    The identity graph's edges: every candidate link (int_identity__edge_candidates) that touches no
    excluded identifier (blocked value or over the people-per-identifier cap). One row per undirected
    edge, node_key_a < node_key_b. Connected components of these edges are the customers.
-#}
with

candidates as (

    select * from {{ ref('int_identity__edge_candidates') }}

),

excluded as (

    select * from {{ ref('int_identity__excluded_identifiers') }}

),

final as (

    select
        -- keys
        candidates.node_key_a,
        candidates.node_key_b,

        -- dimensions
        candidates.edge_type,
        candidates.evidence,

        -- metrics
        candidates.match_probability,
        candidates.observation_count,

        -- timestamps
        candidates.first_seen_at,
        candidates.last_seen_at

    from candidates
    left join excluded as excluded_a
        on candidates.node_key_a = excluded_a.node_key
    left join excluded as excluded_b
        on candidates.node_key_b = excluded_b.node_key
    where excluded_a.node_key is null and excluded_b.node_key is null

)

select * from final
