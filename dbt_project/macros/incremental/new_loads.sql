{#-
    Staging tables built incrementally by load (issue 20): the raw layer only grows (a file is loaded once, by its
    content hash), so an incremental run reads the raw rows loaded at or after the latest load the table holds, and
    those whose date is in the lookback window (var mos__incremental_lookback_days, as the event marts: a row written
    into raw with an old load time), and adds the keys the table does not hold yet (the model's anti-join: the copy
    the table holds was loaded first, as a full build would keep it). A full build reads every row.

    `and {{ loaded_since_last_build('_loaded_at', 'cast(occurred_at as date)') }}` in the model's source filter;
    `loaded_at` and `occurred_at` are the table's columns.
-#}
{% macro loaded_since_last_build(raw_loaded_at, raw_date) -%}
    {%- if is_incremental() -%}
    (
        {{ raw_loaded_at }} >= (select max(built.loaded_at) from {{ this }} as built)
        or {{ raw_date }} >= (
            select {{ dbt.dateadd('day', -1 * var('mos__incremental_lookback_days'), 'max(cast(built.occurred_at as date))') }}
            from {{ this }} as built
        )
        or (select count(*) from {{ this }}) = 0
    )
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}
