{#-
    How each customer can be reached: the golden email (dim_customers), else the address of the
    customer's most recently seen email identity node (the addresses we email and consent subjects
    are nodes, so a customer known only from the ESP or the consent platform still has one); the
    golden E.164 phone. Customers with neither are left out.
-#}
with

customers as (

    select * from {{ ref('dim_customers') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

latest_email_nodes_ranked as (

    select
        customer_id,
        node_value as email_address,
        row_number() over (partition by customer_id order by first_seen_at desc, node_value asc) as row_rank
    from identity_map
    where node_type = 'email'

),

latest_email_nodes as (

    select
        customer_id,
        email_address
    from latest_email_nodes_ranked
    where row_rank = 1

),

final as (

    select
        -- keys
        customers.customer_id,

        -- dimensions
        coalesce(customers.email, latest_email_nodes.email_address) as email_address,
        case when customers.email is not null then 'golden_record' else 'identity_map' end as email_source,
        customers.phone_e164,
        customers.first_name,
        customers.last_name,
        customers.company,
        customers.country_code

    from customers
    left join latest_email_nodes
        on customers.customer_id = latest_email_nodes.customer_id
    where coalesce(customers.email, latest_email_nodes.email_address, customers.phone_e164) is not null

)

select * from final
