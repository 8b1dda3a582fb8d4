-- Every source record, device, user id and identifier → the customer it belongs to, with what put it there.
with

history as (

    select * from {{ ref('fct_customer_id_changes') }}

),

nodes as (

    select * from {{ ref('int_identity__nodes') }}

),

edges as (

    select * from {{ ref('int_identity__edges') }}

),

matched as (

    select * from {{ ref('int_crm_contacts__matched') }}

),

crm as (

    select * from {{ ref('int_crm_contacts__normalised') }}

),

latest_id_ranked as (

    select
        node_key,
        customer_id,
        id_created_run,
        run_number as assigned_in_run,
        row_number() over (partition by node_key order by run_number desc) as row_rank
    from history

),

latest_id as (

    select
        node_key,
        customer_id,
        id_created_run,
        assigned_in_run
    from latest_id_ranked
    where row_rank = 1

),

node_edges as (

    -- one row per node and edge type (union, not union all: listagg below has no portable distinct)
    select
        node_key_a as node_key,
        edge_type
    from edges
    union
    select
        node_key_b as node_key,
        edge_type
    from edges

),

rules as (

    select
        node_key,
        {{ dbt.listagg('edge_type', "','", 'order by edge_type') }} as edge_types
    from node_edges
    group by node_key

),

final as (

    select
        -- keys
        nodes.node_key,
        latest_id.customer_id,

        -- dimensions
        nodes.node_type,
        nodes.node_value,
        crm.source_system,
        crm.source_record_id,
        case
            when matched.cluster_size > 1 then 'probabilistic_match'
            when rules.edge_types is not null then 'deterministic:' || rules.edge_types
            else 'singleton'
        end as assigned_by,
        rules.edge_types,

        -- metrics
        cast(matched.best_match_probability as double) as match_probability,
        latest_id.id_created_run,
        latest_id.assigned_in_run,

        -- timestamps
        nodes.first_seen_at

    from nodes
    inner join latest_id on nodes.node_key = latest_id.node_key
    left join rules on nodes.node_key = rules.node_key
    left join crm on nodes.node_key = crm.node_key
    left join matched on crm.contact_record_key = matched.contact_record_key

)

select * from final
