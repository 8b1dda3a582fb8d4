{#-
    The customers a KPI conversion counts for: the customer it belongs to and the customer of the
    device that sent it (event_customer_id), as two equi-join-friendly key rows instead of an OR
    join (a nested loop at 100k people). `conversions` is a relation or CTE with conversion_id,
    converted_at, conversion_type, customer_id and event_customer_id.
-#}
{%- macro kpi_conversion_customers(conversions, kpi_types) -%}
    select
        conversion_id,
        converted_at,
        customer_id
    from {{ conversions }}
    where customer_id is not null and conversion_type in ({{ quoted_list(kpi_types) }})
    union
    select
        conversion_id,
        converted_at,
        event_customer_id as customer_id
    from {{ conversions }}
    where event_customer_id is not null and conversion_type in ({{ quoted_list(kpi_types) }})
{%- endmacro -%}
