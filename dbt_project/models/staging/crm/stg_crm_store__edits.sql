-- Fields set through the CRM API on warehouse customers (ops.crm_store_edits), one row per customer and field. An
-- edit's value may be null (a field cleared).
{%- set edits = optional_source('ops', 'crm_store_edits', {
    'customer_id': 'varchar', 'field': 'varchar', 'value': 'varchar',
    'edited_at': 'timestamp', 'edited_by': 'varchar', 'record_version': 'bigint',
}) %}

with

source as (

    select * from {{ edits }} as edits

),

final as (

    select
        -- keys
        {{ clean_string('customer_id') }} as customer_id,
        {{ clean_string('field') }} as field_name,

        -- the edit
        value as field_value,
        edited_by,
        record_version,

        -- timestamps
        edited_at

    from source
    where field is not null and customer_id is not null

)

select * from final
