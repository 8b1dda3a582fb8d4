{#
    Connected components of an undirected graph by iterative label propagation, run from the macro
    with run_query (scratch tables next to `scratch_base`, by default the calling model).

        {%- set components = label_propagation(ref('nodes'), ref('edges'), 50) %}
        select node_key, component_key from {{ components.relation }}

    nodes_relation: a relation (or a parenthesised subquery) with column `node_key`.
    edges_relation: the same with `node_key_a`, `node_key_b` (direction and duplicates do not matter;
        endpoints missing from the nodes are added, self-loops ignored).
    Returns {relation, iterations, converged, changed_in_last_iteration, executed}: `relation` holds
    (node_key, component_key), component_key = the smallest node_key of the component. The caller
    drops it when done (drop_label_propagation_scratch, e.g. as a post-hook).

    Each iteration builds the next labels from the current ones, in one create-table-as-select:
    1. every node takes the smallest of its own label and its neighbours' labels;
    2. hooking: the node a label points at also takes the smallest label seen across any edge of
       the nodes it labels (a whole tree of labels moves at once);
    3. pointer jumping: a node takes the label of its label when that is smaller.
    Labels only decrease and always name a node of the same component, so at the fixed point
    (no label changed) every component carries its smallest key. 2 and 3 make chains converge
    in O(log n) iterations instead of their length. The loop stops when nothing changed or after
    max_iterations (then `converged` is false and the labels are a partial result: some
    components may still be split, never merged wrongly).

    Only standard SQL is used inside the loop (create table as select, joins, min, group by,
    union), so it ports to any warehouse dbt supports. The loop runs only when dbt executes nodes
    (run, build, test, retry); compile, docs and parse see placeholder values.
#}
{% macro label_propagation(nodes_relation, edges_relation, max_iterations=50, scratch_base=none) -%}
    {%- set base = scratch_base if scratch_base is not none else this -%}
    {%- set edges = label_propagation_scratch_relation(base, 'edges') -%}
    {%- set result = label_propagation_scratch_relation(base, 'result') -%}
    {%- set outcome = {
        'relation': result, 'iterations': 0, 'converged': false,
        'changed_in_last_iteration': none, 'executed': false
    } -%}
    {%- if not (execute and flags.WHICH in ['run', 'build', 'test', 'retry']) -%}
        {{ return(outcome) }}
    {%- endif -%}

    {%- do drop_label_propagation_scratch(base, max_iterations, execute_drop=true) -%}

    {%- set create_edges -%}
        create table {{ edges }} as
        select node_key_a as src, node_key_b as dst from {{ edges_relation }} as edges_in
        where node_key_a is not null and node_key_b is not null and node_key_a != node_key_b
        union
        select node_key_b as src, node_key_a as dst from {{ edges_relation }} as edges_in
        where node_key_a is not null and node_key_b is not null and node_key_a != node_key_b
    {%- endset -%}
    {%- do run_query(create_edges) -%}

    {%- set labels_0 = label_propagation_scratch_relation(base, 'labels_0') -%}
    {%- set create_labels -%}
        create table {{ labels_0 }} as
        select
            node_key,
            node_key as label
        from (
            select node_key from {{ nodes_relation }} as nodes_in where node_key is not null
            union
            select src as node_key from {{ edges }}
        ) as all_nodes
    {%- endset -%}
    {%- do run_query(create_labels) -%}

    {%- set state = namespace(current=labels_0, iterations=0, changed=none, done=false) -%}
    {%- for iteration in range(1, max_iterations + 1) -%}
        {%- if not state.done -%}
            {%- set next_labels = label_propagation_scratch_relation(base, 'labels_' ~ iteration) -%}
            {%- set propagate -%}
                create table {{ next_labels }} as
                with

                candidates as (

                    select node_key, label from {{ state.current }}

                    union all

                    select
                        edges.dst as node_key,
                        labels.label
                    from {{ edges }} as edges
                    inner join {{ state.current }} as labels
                        on edges.src = labels.node_key

                    union all

                    select
                        from_labels.label as node_key,
                        to_labels.label
                    from {{ edges }} as edges
                    inner join {{ state.current }} as from_labels
                        on edges.src = from_labels.node_key
                    inner join {{ state.current }} as to_labels
                        on edges.dst = to_labels.node_key
                    where to_labels.label < from_labels.label

                ),

                hooked as (

                    select
                        node_key,
                        min(label) as label
                    from candidates
                    group by node_key

                )

                select
                    hooked.node_key,
                    case
                        when jumped.label < hooked.label then jumped.label
                        else hooked.label
                    end as label
                from hooked
                inner join hooked as jumped
                    on hooked.label = jumped.node_key
            {%- endset -%}
            {%- do run_query(propagate) -%}

            {%- set count_changes -%}
                select count(*) as changed_labels
                from {{ next_labels }} as next_labels
                inner join {{ state.current }} as current_labels
                    on next_labels.node_key = current_labels.node_key
                where next_labels.label != current_labels.label
            {%- endset -%}
            {%- set changed = run_query(count_changes).columns[0].values()[0] | int -%}
            {%- do adapter.drop_relation(state.current) -%}
            {%- set state.current = next_labels -%}
            {%- set state.iterations = iteration -%}
            {%- set state.changed = changed -%}
            {%- if changed == 0 -%}
                {%- set state.done = true -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}

    {%- set create_result -%}
        create table {{ result }} as
        select
            node_key,
            label as component_key
        from {{ state.current }}
    {%- endset -%}
    {%- do run_query(create_result) -%}
    {%- do adapter.drop_relation(state.current) -%}
    {%- do adapter.drop_relation(edges) -%}

    {%- do outcome.update({
        'iterations': state.iterations, 'converged': state.done,
        'changed_in_last_iteration': state.changed, 'executed': true
    }) -%}
    {{ return(outcome) }}
{%- endmacro %}


{#- Scratch table `<base identifier>__lp_<name>` in the base relation's database and schema. -#}
{% macro label_propagation_scratch_relation(base, name) -%}
    {{ return(api.Relation.create(
        database=base.database, schema=base.schema, identifier=base.identifier ~ '__lp_' ~ name, type='table'
    )) }}
{%- endmacro %}


{#
    Drops what label_propagation leaves behind for `base`. As a post-hook it returns the SQL that
    drops the result table; with execute_drop=true it drops every scratch table of a previous
    (possibly interrupted) run right away.
#}
{% macro drop_label_propagation_scratch(base, max_iterations=none, execute_drop=false) -%}
    {%- set result = label_propagation_scratch_relation(base, 'result') -%}
    {%- if execute_drop -%}
        {%- set last = (max_iterations or var('mos__identity_max_label_iterations')) | int -%}
        {%- set names = ['result', 'edges'] -%}
        {%- for iteration in range(0, last + 1) -%}
            {%- do names.append('labels_' ~ iteration) -%}
        {%- endfor -%}
        {%- for name in names -%}
            {%- set relation = label_propagation_scratch_relation(base, name) -%}
            {%- if adapter.get_relation(relation.database, relation.schema, relation.identifier) is not none -%}
                {%- do adapter.drop_relation(relation) -%}
            {%- endif -%}
        {%- endfor -%}
        {{ return('') }}
    {%- endif -%}
    drop table if exists {{ result }}
{%- endmacro %}
