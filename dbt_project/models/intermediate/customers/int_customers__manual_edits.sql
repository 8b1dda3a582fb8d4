{#-
    One row per customer with a field set through the CRM API: for each golden attribute whether it was edited
    (`has_<attribute>`) and the edit's value (null when the edit cleared it). An edit names a customer id that a
    later build may have merged into another customer (dim_customer_id_history): it follows the id to the
    customer now holding it, and when two merged customers were both edited, the newest edit of a field wins.
-#}
{%- set golden_attributes = [
    'first_name', 'last_name', 'email', 'phone_e164', 'company', 'job_title',
    'country_code', 'city', 'postcode', 'birth_date',
] %}

with

edits as (

    select * from {{ ref('stg_crm_store__edits') }}

),

customer_ids as (

    select * from {{ ref('int_crm_store__customer_ids') }}
    where store_record_kind = 'warehouse'

),

resolved as (

    select
        customer_ids.customer_id,
        edits.field_name,
        edits.field_value,
        edits.edited_at,
        edits.edited_by,
        row_number() over (
            partition by customer_ids.customer_id, edits.field_name
            order by edits.edited_at desc, edits.record_version desc, edits.customer_id desc
        ) as recency_rank
    from edits
    inner join customer_ids
        on edits.customer_id = customer_ids.store_customer_id

),

newest as (

    select * from resolved
    where recency_rank = 1

),

final as (

    select
        customer_id,
        {%- for attribute in golden_attributes %}
        max(case when field_name = '{{ attribute }}' then 1 else 0 end) = 1 as has_{{ attribute }},
        max(case when field_name = '{{ attribute }}' then field_value end) as edited_{{ attribute }},
        {%- endfor %}
        {{ dbt.listagg('field_name', "','", 'order by field_name') }} as manually_edited_fields,
        max(edited_at) as manually_edited_at
    from newest
    group by customer_id

)

select * from final
