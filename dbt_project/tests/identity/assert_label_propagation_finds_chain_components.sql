{#-
    label_propagation on a small known graph: a 64-node chain whose keys are in scrambled order
    (the case naive propagation gets wrong or slow), a triangle, an isolated node and a duplicated,
    reversed and self-looped edge. Fails for every node whose component is not the smallest key of
    its true component, and when the propagation did not converge within 12 iterations.
-#}
-- depends_on: {{ ref('int_identity__components') }}
{%- set chain = [] %}
{%- for position in range(64) %}{% do chain.append('n%03d' % ((position * 37) % 101)) %}{% endfor %}
{%- set expected = {'t1': 't1', 't2': 't1', 't3': 't1', 'z9': 'z9'} %}
{%- for key in chain %}{% do expected.update({key: chain | min}) %}{% endfor %}
{%- set edge_pairs = [('t3', 't2'), ('t2', 't1'), ('t1', 't3'), ('t1', 't2'), ('z9', 'z9')] %}
{%- for position in range(63) %}{% do edge_pairs.append((chain[position], chain[position + 1])) %}{% endfor %}
{%- set node_selects = [] %}
{%- for key in expected %}{% do node_selects.append("select '" ~ key ~ "' as node_key") %}{% endfor %}
{%- set edge_selects = [] %}
{%- for a, b in edge_pairs %}
{%- do edge_selects.append("select '" ~ a ~ "' as node_key_a, '" ~ b ~ "' as node_key_b") %}
{%- endfor %}
{%- set nodes_sql = '(' ~ node_selects | join(' union all ') ~ ')' %}
{%- set edges_sql = '(' ~ edge_selects | join(' union all ') ~ ')' %}
{%- set scratch = api.Relation.create(
    database=(target.database or none), schema=target.schema, identifier='lp_test_chain', type='table'
) %}
{%- if execute %}{% do adapter.create_schema(scratch) %}{% endif %}  {#- Spark has no `main` until asked #}
{%- set outcome = label_propagation(nodes_sql, edges_sql, 50, scratch_base=scratch) %}
{%- set found = [] %}
{%- if outcome.executed %}
    {%- set result = run_query('select node_key, component_key from ' ~ outcome.relation) %}
    {%- for row in result.rows %}{% do found.append((row[0], row[1])) %}{% endfor %}
    {%- do adapter.drop_relation(outcome.relation) %}
{%- endif %}

with

expected as (

    {%- for key, component in expected.items() %}
    select
        '{{ key }}' as node_key,
        '{{ component }}' as component_key
    {{- ' union all' if not loop.last }}
    {%- endfor %}

),

found as (

    {%- if found | length == 0 %}
    select
        cast(null as {{ dbt.type_string() }}) as node_key,
        cast(null as {{ dbt.type_string() }}) as component_key
    where 1 = 0
    {%- else %}
    {%- for key, component in found %}
    select
        '{{ key }}' as node_key,
        '{{ component }}' as component_key
    {{- ' union all' if not loop.last }}
    {%- endfor %}
    {%- endif %}

),

wrong_components as (

    select
        coalesce(expected.node_key, found.node_key) as node_key,
        expected.component_key as expected_component_key,
        found.component_key as found_component_key
    from expected
    full outer join found
        on expected.node_key = found.node_key
    where
        expected.component_key is null
        or found.component_key is null
        or expected.component_key != found.component_key

),

not_converged as (

    select
        'label_propagation' as node_key,
        'converged within 12 iterations' as expected_component_key,
        '{{ outcome.iterations }} iterations, converged: {{ outcome.converged }}' as found_component_key
    where {{ 'false' if outcome.converged and outcome.iterations <= 12 else 'true' }}

)

select * from wrong_components
union all
select * from not_converged
