-- Every CRM note, landed (stg_crm__notes: subject an email or a CRM record id) or written through the CRM API
-- (stg_crm_store__notes: subject a customer id). The notes' attributes and relationships read this.
with

landed as (

    select * from {{ ref('stg_crm__notes') }}

),

api as (

    select * from {{ ref('stg_crm_store__notes') }}

),

final as (

    {%- for relation in ['landed', 'api'] %}
    select
        note_id,
        subject,
        author,
        note_text,
        created_at,
        loaded_at,
        source_file,
        source_line
    from {{ relation }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

)

select * from final
