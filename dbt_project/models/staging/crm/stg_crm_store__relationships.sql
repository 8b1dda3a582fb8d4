-- Relationships set through the CRM API (ops.crm_store_relationships); their ends are store customer ids.
{%- set relationships = optional_source('ops', 'crm_store_relationships', {
    'relationship_id': 'varchar', 'from_customer_id': 'varchar', 'to_customer_id': 'varchar',
    'relationship_type': 'varchar', 'weight': 'double', 'evidence': 'varchar', 'updated_by': 'varchar',
    'updated_at': 'timestamp',
}) %}

with

source as (

    select * from {{ relationships }} as relationships

),

final as (

    select
        -- keys
        {{ clean_string('relationship_id') }} as relationship_id,
        {{ clean_string('from_customer_id') }} as from_store_customer_id,
        {{ clean_string('to_customer_id') }} as to_store_customer_id,

        -- dimensions
        {{ clean_string('relationship_type') }} as relationship_type,
        weight,
        evidence,
        updated_by,

        -- timestamps
        updated_at

    from source
    where relationship_id is not null

)

select * from final
