{{ config(severity='error', meta={'dagster': {'ref': {'name': 'dim_customer_identity_map'}}}) }}
-- Gate: after resolution, fewer than mos__identity_max_duplicate_rate of customers may still share an
-- exact identifier (email match key or E.164 phone) with another customer. Identifiers the guards
-- excluded (blocked values, cardinality cap) are not counted: sharing them is expected. Below
-- mos__identity_min_customers_for_duplicate_rate customers the rate is not judged (small denominator).
with

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

crm as (

    select * from {{ ref('int_crm_contacts__normalised') }}

),

excluded as (

    select * from {{ ref('int_identity__excluded_identifiers') }}

),

customer_identifiers as (

    select distinct
        identity_map.customer_id,
        'email:' || crm.email_match_key as identifier
    from identity_map
    inner join crm on identity_map.node_key = crm.node_key
    where crm.email_match_key is not null
    union
    select distinct
        identity_map.customer_id,
        'phone:' || crm.phone_e164 as identifier
    from identity_map
    inner join crm on identity_map.node_key = crm.node_key
    where crm.phone_e164 is not null

),

counted as (

    select customer_identifiers.*
    from customer_identifiers
    left join excluded on customer_identifiers.identifier = excluded.node_key
    where excluded.node_key is null

),

twins as (

    select identifier
    from counted
    group by identifier
    having count(distinct customer_id) > 1

),

customers_with_twin as (

    select count(distinct counted.customer_id) as customers_with_twin
    from counted
    inner join twins on counted.identifier = twins.identifier

),

customers as (

    select count(distinct customer_id) as customers
    from identity_map

),

rates as (

    select
        customers_with_twin.customers_with_twin,
        customers.customers
    from customers_with_twin
    cross join customers

)

select
    customers_with_twin,
    customers,
    customers_with_twin * 1.0 / nullif(customers, 0) as duplicate_rate
from rates
where
    customers_with_twin > {{ var('mos__identity_max_duplicate_rate') }} * customers
    and customers >= {{ var('mos__identity_min_customers_for_duplicate_rate') }}
