-- The warehouse customer behind each id the CRM API uses (one row per id and kind):
-- - a current warehouse customer id is itself;
-- - a customer id a build retired by a merge (fct_customer_id_changes) is the customer now holding most of the
--   nodes that left it (ties: the smallest id), so an edit or an edge set on it follows the person;
-- - a person the API created (`crm_…`, kind mos_crm) is the customer holding its contact record `mos_crm:<id>`.
with

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

id_changes as (

    select * from {{ ref('fct_customer_id_changes') }}

),

current_ids as (

    select distinct customer_id
    from identity_map

),

retired_moves as (

    select
        id_changes.previous_customer_id as retired_customer_id,
        identity_map.customer_id,
        count(*) as nodes_moved
    from id_changes
    inner join identity_map
        on id_changes.node_key = identity_map.node_key
    left join current_ids
        on id_changes.previous_customer_id = current_ids.customer_id
    where
        id_changes.change = 'merged'
        and id_changes.previous_customer_id is not null
        and current_ids.customer_id is null
    group by id_changes.previous_customer_id, identity_map.customer_id

),

ranked_moves as (

    select
        retired_customer_id,
        customer_id,
        row_number() over (
            partition by retired_customer_id
            order by nodes_moved desc, customer_id asc
        ) as move_rank
    from retired_moves

),

retired_ids as (

    select
        retired_customer_id as store_customer_id,
        customer_id,
        'warehouse' as store_record_kind
    from ranked_moves
    where move_rank = 1

),

created_people as (

    select
        source_record_id as store_customer_id,
        customer_id,
        'mos_crm' as store_record_kind
    from identity_map
    where node_type = 'crm' and source_system = 'mos_crm' and source_record_id is not null

),

final as (

    select
        customer_id as store_customer_id,
        customer_id,
        'warehouse' as store_record_kind
    from current_ids

    union all

    select * from retired_ids

    union all

    select * from created_people

)

select * from final
