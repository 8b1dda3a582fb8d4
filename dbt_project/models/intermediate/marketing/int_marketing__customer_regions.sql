{#
    The marketing region of each customer whose region is known: the one definition in
    int_customers__regions (latest consent event, else the golden record's country, else the event
    locale), without the `unknown` rows, so the marts can fall back to other evidence (e.g. the
    consent record of an email recipient) and read a customer absent here as `unknown`.
#}
with

customer_regions as (

    select * from {{ ref('int_customers__regions') }}

),

final as (

    select
        -- keys
        customer_id,

        -- dimensions
        region,
        region_source

    from customer_regions
    where region != 'unknown'

)

select * from final
