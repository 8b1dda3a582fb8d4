{#
    One row per customer (dim_customer_identity_map.customer_id) with a golden record chosen by the
    survivorship rules of var mos__survivorship, and what the customer is made of.

    Candidate records: the customer's CRM records (source = CRM system), the latest identify traits
    of its user ids (source `segment`) and its orders (source `orders`, email only). Emails and
    phones excluded from the identity graph (blocked or shared values) are not candidates.
#}
{%- set golden_attributes = [
    'first_name', 'last_name', 'email', 'phone_e164', 'company', 'job_title',
    'country_code', 'city', 'postcode', 'birth_date',
] %}
{%- set survivorship = survivorship_settings(golden_attributes) %}

with

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

nodes as (

    select * from {{ ref('int_identity__nodes') }}

),

crm_contacts as (

    select * from {{ ref('int_crm_contacts__normalised') }}

),

user_traits as (

    select * from {{ ref('int_segment_users__latest_traits') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

excluded_identifiers as (

    select * from {{ ref('int_identity__excluded_identifiers') }}

),

manual_edits as (

    select * from {{ ref('int_customers__manual_edits') }}

),

note_attributes as (

    -- the current value of every attribute read from the customer's notes (customer_note_attributes)
    select * from {{ ref('int_customers__note_attributes') }}

),

candidate_records as (

    select
        identity_map.customer_id,
        identity_map.node_key as record_key,
        crm_contacts.source_system,
        crm_contacts.given_name as first_name,
        crm_contacts.family_name as last_name,
        crm_contacts.email_normalised as email,
        crm_contacts.email_match_key,
        crm_contacts.phone_e164,
        crm_contacts.company,
        crm_contacts.job_title,
        crm_contacts.country_code,
        crm_contacts.city,
        upper(crm_contacts.postcode) as postcode,
        crm_contacts.birth_date,
        coalesce(crm_contacts.updated_at, crm_contacts.created_at) as updated_at
    from identity_map
    inner join crm_contacts
        on identity_map.node_key = crm_contacts.node_key

    union all

    select
        identity_map.customer_id,
        identity_map.node_key as record_key,
        'segment' as source_system,
        user_traits.first_name,
        user_traits.last_name,
        user_traits.email_normalised as email,
        user_traits.email_match_key,
        cast(null as {{ dbt.type_string() }}) as phone_e164,
        user_traits.company,
        cast(null as {{ dbt.type_string() }}) as job_title,
        cast(null as {{ dbt.type_string() }}) as country_code,
        cast(null as {{ dbt.type_string() }}) as city,
        cast(null as {{ dbt.type_string() }}) as postcode,
        cast(null as date) as birth_date,
        user_traits.identified_at as updated_at
    from identity_map
    inner join user_traits
        on
            identity_map.node_type = 'user'
            and identity_map.node_value = user_traits.user_id

    union all

    select
        identity_map.customer_id,
        identity_map.node_key as record_key,
        'orders' as source_system,
        cast(null as {{ dbt.type_string() }}) as first_name,
        cast(null as {{ dbt.type_string() }}) as last_name,
        orders.email,
        {{ email_match_key('orders.email') }} as email_match_key,
        cast(null as {{ dbt.type_string() }}) as phone_e164,
        cast(null as {{ dbt.type_string() }}) as company,
        cast(null as {{ dbt.type_string() }}) as job_title,
        cast(null as {{ dbt.type_string() }}) as country_code,
        cast(null as {{ dbt.type_string() }}) as city,
        cast(null as {{ dbt.type_string() }}) as postcode,
        cast(null as date) as birth_date,
        orders.created_at as updated_at
    from identity_map
    inner join orders
        on
            identity_map.node_type = 'order'
            and identity_map.node_value = orders.order_id
    where orders.email is not null

),

cleaned_records as (

    -- blocked or shared identifiers (int_identity__excluded_identifiers) never become golden values
    select
        candidate_records.customer_id,
        candidate_records.record_key,
        candidate_records.source_system,
        candidate_records.first_name,
        candidate_records.last_name,
        case when excluded_emails.node_key is null then candidate_records.email end as email,
        case when excluded_phones.node_key is null then candidate_records.phone_e164 end as phone_e164,
        candidate_records.company,
        candidate_records.job_title,
        candidate_records.country_code,
        candidate_records.city,
        candidate_records.postcode,
        candidate_records.birth_date,
        candidate_records.updated_at
    from candidate_records
    left join excluded_identifiers as excluded_emails
        on 'email:' || candidate_records.email_match_key = excluded_emails.node_key
    left join excluded_identifiers as excluded_phones
        on 'phone:' || candidate_records.phone_e164 = excluded_phones.node_key

),

scored_records as (

    select
        *,
        (
            0
            {%- for attribute in golden_attributes %}
            + case when {{ attribute }} is null then 0 else 1 end
            {%- endfor %}
        ) as filled_attributes
    from cleaned_records

),

survived as (

    select
        {%- for attribute in golden_attributes %}
        {{ survivorship_value(attribute, survivorship[attribute], 'customer_id') }} as {{ attribute }},
        {%- endfor %}
        customer_id
    from scored_records

),

golden_records as (

    select
        {%- for attribute in golden_attributes %}
        max({{ attribute }}) as {{ attribute }},
        {%- endfor %}
        customer_id
    from survived
    group by customer_id

),

customer_nodes as (

    select
        identity_map.customer_id,
        identity_map.node_type,
        crm_contacts.source_system as crm_source_system,
        nodes.first_seen_at,
        nodes.last_seen_at
    from identity_map
    left join nodes
        on identity_map.node_key = nodes.node_key
    left join crm_contacts
        on identity_map.node_key = crm_contacts.node_key

),

node_counts as (

    select
        customer_id,
        count(case when node_type = 'crm' then 1 end) as crm_record_count,
        count(case when node_type = 'anon' then 1 end) as device_count,
        count(case when node_type = 'user' then 1 end) as user_id_count,
        count(case when node_type = 'order' then 1 end) as order_count,
        count(case when node_type = 'email' then 1 end) as email_count,
        count(case when node_type = 'phone' then 1 end) as phone_count,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from customer_nodes
    group by customer_id

),

customer_sources as (

    select distinct
        customer_id,
        case
            when node_type = 'crm' then crm_source_system
            when node_type in ('anon', 'user') then 'segment'
            when node_type = 'order' then 'orders'
        end as source_system
    from customer_nodes
    where node_type in ('crm', 'anon', 'user', 'order')

),

source_lists as (

    select
        customer_id,
        {{ dbt.listagg('source_system', "','", 'order by source_system') }} as source_systems
    from customer_sources
    where source_system is not null
    group by customer_id

),

edited_records as (

    select
        {%- for attribute in golden_attributes %}
        case
            when manual_edits.has_{{ attribute }}
                then {{ manual_edit_value(attribute, 'manual_edits.edited_' ~ attribute) }}
            else golden_records.{{ attribute }}
        end as {{ attribute }},
        {%- endfor %}
        node_counts.customer_id
    from node_counts
    left join golden_records
        on node_counts.customer_id = golden_records.customer_id
    left join manual_edits
        on node_counts.customer_id = manual_edits.customer_id

),

final as (

    select
        -- keys
        node_counts.customer_id,

        -- golden attributes
        {%- for attribute in golden_attributes %}
        edited_records.{{ attribute }},
        {%- endfor %}

        -- lineage
        source_lists.source_systems,
        (
            node_counts.crm_record_count > 0
            or node_counts.user_id_count > 0
            or node_counts.email_count > 0
        ) as is_identified,

        -- metrics
        node_counts.crm_record_count,
        node_counts.device_count,
        node_counts.user_id_count,
        node_counts.order_count,
        node_counts.email_count,
        node_counts.phone_count,

        -- read from notes (newest note wins; customer_note_attributes keeps the history)
        note_attributes.note_product_interest,
        note_attributes.note_budget_amount,
        note_attributes.note_budget_currency,
        note_attributes.note_decision_start_date,
        note_attributes.note_decision_end_date,
        note_attributes.note_competitors,
        note_attributes.note_role,
        note_attributes.note_seniority,
        note_attributes.note_pain_point,
        note_attributes.note_next_step,
        note_attributes.note_next_step_date,
        note_attributes.note_sentiment,
        coalesce(note_attributes.note_count, 0) as note_count,

        -- edited through the CRM API (the fields, comma-separated, and the newest edit)
        manual_edits.manually_edited_fields,

        -- timestamps
        node_counts.first_seen_at,
        node_counts.last_seen_at,
        note_attributes.last_note_at,
        manual_edits.manually_edited_at

    from node_counts
    left join edited_records
        on node_counts.customer_id = edited_records.customer_id
    left join source_lists
        on node_counts.customer_id = source_lists.customer_id
    left join note_attributes
        on node_counts.customer_id = note_attributes.customer_id
    left join manual_edits
        on node_counts.customer_id = manual_edits.customer_id

)

select * from final
