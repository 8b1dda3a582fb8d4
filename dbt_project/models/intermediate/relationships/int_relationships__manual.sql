-- Relationships set through the CRM API with both ends resolved to warehouse customers (an end that resolves to no
-- customer, e.g. a person created after this build's identity ran, is left out until the next build).
with

relationships as (

    select * from {{ ref('stg_crm_store__relationships') }}

),

customer_ids as (

    select * from {{ ref('int_crm_store__customer_ids') }}

),

final as (

    select
        relationships.relationship_id,
        from_ids.customer_id as from_customer_id,
        to_ids.customer_id as to_customer_id,
        relationships.relationship_type,
        relationships.weight,
        relationships.evidence,
        relationships.updated_by,
        relationships.updated_at
    from relationships
    inner join customer_ids as from_ids
        on relationships.from_store_customer_id = from_ids.store_customer_id
    inner join customer_ids as to_ids
        on relationships.to_store_customer_id = to_ids.store_customer_id

)

select * from final
