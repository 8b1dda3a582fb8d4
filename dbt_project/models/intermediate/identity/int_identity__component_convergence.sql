{#- One row: how the last label propagation of int_identity__components ended, and what it found. -#}
with

components as (

    select * from {{ ref('int_identity__components') }}

),

component_sizes as (

    select
        component_key,
        count(*) as component_size
    from components
    group by component_key

),

final as (

    select
        -- metrics
        max(components.label_iterations) as label_iterations,
        coalesce(min(case when components.is_converged then 1 else 0 end) = 1, true) as is_converged,
        max(components.changed_in_last_iteration) as changed_in_last_iteration,
        count(*) as node_count,
        count(distinct components.component_key) as component_count,
        (select max(component_sizes.component_size) from component_sizes) as largest_component_size

    from components

)

select * from final
