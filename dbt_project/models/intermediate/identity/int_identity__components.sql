{#-
    Connected components of the identity graph: each node with the smallest node key of its
    component, by label propagation (macro label_propagation, iterated with run_query until no
    label changes or var mos__identity_max_label_iterations). Every row repeats how the run ended;
    int_identity__component_convergence summarises it and its test fails when it did not converge.
-#}
{{ config(post_hook="{{ drop_label_propagation_scratch(this) }}") }}

{%- set components = label_propagation(
    ref('int_identity__nodes'),
    ref('int_identity__edges'),
    var('mos__identity_max_label_iterations') | int
) %}

with

nodes as (

    select * from {{ ref('int_identity__nodes') }}

),

labels as (

    select * from {{ components.relation }}

),

final as (

    select
        -- keys
        labels.node_key,
        labels.component_key,

        -- dimensions
        nodes.node_type,

        -- metrics
        count(*) over (partition by labels.component_key) as component_size,
        {{ components.iterations }} as label_iterations,
        {{ 'true' if components.converged else 'false' }} as is_converged,
        {{ components.changed_in_last_iteration if components.changed_in_last_iteration is not none else 'null' }}
            as changed_in_last_iteration

    from labels
    left join nodes
        on labels.node_key = nodes.node_key

)

select * from final
