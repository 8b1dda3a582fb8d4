{#-
    Every attribute read from a CRM note, attached to the customer the note is about (its subject: a CRM record
    id, an email, or the customer id of a note written through the CRM API), with its history: per customer and
    attribute (and per value for product interest and competitors) the newest note's value is `current`; an older
    value is `superseded` (by the newer note named in superseded_by_note_id), and a product or competitor whose
    newest mention negates it is `retracted` ("no longer looking at Braze"). Notes whose subject matches
    no customer keep a null customer_id.
-#}
{%- set multi_valued = "('product_interest', 'competitor')" %}

with

attributes as (

    -- typed here: without notes the Python model's columns carry no type (a table of nulls)
    select
        cast(note_id as {{ dbt.type_string() }}) as note_id,
        cast(subject as {{ dbt.type_string() }}) as subject,
        cast(author as {{ dbt.type_string() }}) as author,
        cast(note_created_at as timestamp) as note_created_at,
        cast(attribute as {{ dbt.type_string() }}) as attribute,  -- noqa: RF04
        cast(value as {{ dbt.type_string() }}) as value,  -- noqa: RF04
        cast(value_number as double) as value_number,
        cast(value_start_date as date) as value_start_date,
        cast(value_end_date as date) as value_end_date,
        cast(is_negated as boolean) as is_negated,
        cast(span_start as bigint) as span_start,
        cast(span_end as bigint) as span_end,
        cast(evidence as {{ dbt.type_string() }}) as evidence,
        cast(confidence as double) as confidence,
        cast(extractor as {{ dbt.type_string() }}) as extractor,
        cast(extractor_version as {{ dbt.type_string() }}) as extractor_version,
        cast(prompt_version as {{ dbt.type_string() }}) as prompt_version
    from {{ ref('int_notes__attributes') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

record_customers_ranked as (

    -- a record id may exist in several CRM systems: the customer of the lowest node key
    select
        source_record_id,
        customer_id,
        row_number() over (partition by source_record_id order by node_key) as row_rank
    from identity_map
    where node_type = 'crm' and source_record_id is not null

),

record_customers as (

    select
        source_record_id,
        customer_id
    from record_customers_ranked
    where row_rank = 1

),

subjects as (

    select distinct
        subject,
        'email:' || {{ email_match_key(normalise_email('subject')) }} as email_node_key
    from attributes
    where subject is not null

),

customer_ids as (

    -- a note written through the CRM API names its customer by id
    select distinct customer_id from identity_map

),

subject_customers as (

    select
        subjects.subject,
        coalesce(customer_ids.customer_id, record_customers.customer_id, email_nodes.customer_id) as customer_id,
        case
            when customer_ids.customer_id is not null then 'customer_id'
            when record_customers.customer_id is not null then 'crm_record'
            when email_nodes.customer_id is not null then 'email'
        end as matched_by
    from subjects
    left join customer_ids
        on subjects.subject = customer_ids.customer_id
    left join record_customers
        on subjects.subject = record_customers.source_record_id
    left join identity_map as email_nodes
        on subjects.email_node_key = email_nodes.node_key

),

attached as (

    select
        attributes.*,
        subject_customers.customer_id,
        subject_customers.matched_by,
        coalesce(subject_customers.customer_id, 'subject:' || attributes.subject) as owner_key,
        case
            when attributes.attribute in {{ multi_valued }} then attributes.value
            else ''
        end as value_key
    from attributes
    left join subject_customers
        on attributes.subject = subject_customers.subject

),

ordered as (

    select
        *,
        row_number() over (
            partition by owner_key, attribute, value_key
            order by note_created_at desc, note_id desc
        ) as recency_rank,
        lead(note_id) over (
            partition by owner_key, attribute, value_key
            order by note_created_at, note_id
        ) as superseded_by_note_id,
        lead(note_created_at) over (
            partition by owner_key, attribute, value_key
            order by note_created_at, note_id
        ) as superseded_at
    from attached

),

final as (

    select
        -- keys
        {{ md5_hex("note_id || '|' || attribute || '|' || value") }} as note_attribute_id,
        customer_id,
        note_id,

        -- the fact
        attribute,
        value,
        value_number,
        value_start_date,
        value_end_date,
        is_negated,
        case
            when recency_rank = 1 and is_negated then 'retracted'
            when recency_rank = 1 then 'current'
            else 'superseded'
        end as status,
        (recency_rank = 1 and not is_negated) as is_current,
        superseded_by_note_id,
        superseded_at,

        -- evidence
        subject as note_subject,
        matched_by as subject_matched_by,
        author as note_author,
        span_start,
        span_end,
        evidence,
        confidence,
        extractor,
        extractor_version,
        prompt_version,

        -- timestamps
        note_created_at

    from ordered

)

select * from final
