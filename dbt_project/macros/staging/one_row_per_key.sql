{#
    Deduplication CTEs for the staging models. Each reads the model's `renamed` CTE (which has
    loaded_at, source_file and source_line) and emits two CTEs, `ranked` and then the kept rows;
    the model writes the comma after the call and picks its output columns in `final`, e.g.

        {{ latest_loaded_version(['order_id']) }},

        final as (
            select order_id, ... from latest
        )

    latest_loaded_version(partition_by, order_by): CTE `latest`, the latest loaded version of each
        key (records that are re-exported with changes: later loads win, then the later file/line).
        order_by replaces that order where a source has a better tie-break (CRM contacts).
    first_loaded_copy(partition_by): CTE `deduplicated`, the earliest loaded copy of each key
        (immutable events, where a repeat is a redelivery of the same event).
    one_row_per_key(partition_by, order_by, kept_cte): the row_number() both are built on.
#}
{% macro latest_loaded_version(partition_by, order_by='loaded_at desc, source_file desc, source_line desc') -%}
    {{ return(one_row_per_key(partition_by, order_by, 'latest')) }}
{%- endmacro %}


{% macro first_loaded_copy(partition_by) -%}
    {{ return(one_row_per_key(partition_by, 'loaded_at, source_file, source_line', 'deduplicated')) }}
{%- endmacro %}


{% macro one_row_per_key(partition_by, order_by, kept_cte) -%}
ranked as (

    select
        *,
        row_number() over (
            partition by {{ partition_by | join(', ') }}
            order by {{ order_by }}
        ) as row_rank
    from renamed

),

{{ kept_cte }} as (

    select * from ranked
    where row_rank = 1

)
{%- endmacro %}
