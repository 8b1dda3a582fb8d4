{{ config(severity='error', meta={'dagster': {'ref': {'name': 'dim_customer_identity_map'}}}) }}
-- Gate against over-merging: no customer may hold more than mos__identity_max_crm_records_per_customer
-- CRM records or mos__identity_max_users_per_customer user ids. A chain of bad links (or a junk
-- identifier that slipped past the guards) shows up here as one giant customer.
with

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

sizes as (

    select
        customer_id,
        count(*) filter (where node_type = 'crm') as crm_records,
        count(*) filter (where node_type = 'user') as user_ids
    from identity_map
    group by customer_id

)

select *
from sizes
where crm_records > {{ var('mos__identity_max_crm_records_per_customer') }}
    or user_ids > {{ var('mos__identity_max_users_per_customer') }}
