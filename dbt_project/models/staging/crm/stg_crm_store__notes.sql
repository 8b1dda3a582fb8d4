-- Notes written through the CRM API (ops.crm_store_notes): the subject is the customer id the note was posted to
-- (a warehouse customer, or a person the API created). Empty while there is no store.
{%- set notes = optional_source('ops', 'crm_store_notes', {
    'note_id': 'varchar', 'customer_id': 'varchar', 'author': 'varchar', 'body': 'varchar',
    'created_at': 'timestamp', 'updated_at': 'timestamp',
}) %}

with

source as (

    select * from {{ notes }} as notes

),

final as (

    select
        -- keys
        {{ clean_string('note_id') }} as note_id,
        {{ clean_string('customer_id') }} as subject,

        -- dimensions
        {{ clean_string('author') }} as author,
        {{ clean_string('body') }} as note_text,

        -- timestamps
        created_at,
        updated_at as loaded_at,

        -- lineage
        'crm_store' as source_file,
        cast(null as bigint) as source_line

    from source
    where note_id is not null

)

select * from final
