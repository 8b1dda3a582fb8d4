{#-
    Event-grain marts built incrementally by date partition (issue 20: a new day costs a day).

    A model configures
        materialized='incremental', incremental_strategy=delete_insert_strategy(), unique_key='<its date column>'
    so every date it returns replaces that whole date in the table (DuckDB: delete+insert; Spark's parquet
    tables have no delete, so a Spark build is a full refresh; with Delta the same contract would be
    insert_overwrite with partition_by='<date column>'), and limits
    the dates it returns with one of the two macros below. The first build and `--full-refresh` return
    every date. Both always rebuild the dates from (the latest date in the table - var
    mos__incremental_lookback_days). Limit: a date whose rows ALL vanished (nothing left to insert for
    it) keeps its old rows until a full refresh; erasure deletes its rows itself (docs/DECISIONS.md).
-#}

{#- Dates to rebuild for a model whose rows are a function of their own source row (fct_events): the
    lookback window and the dates of source rows loaded at or after the latest load the table reflects
    (late events, however old). `rows` is a relation or CTE with the date and load-time expressions. -#}
{% macro dates_loaded_since_last_build(rows, date_expr, loaded_at_expr, date_column, loaded_at_column) %}
    select distinct {{ date_expr }} as partition_date
    from {{ rows }}
    cross join (
        select
            max({{ date_column }}) as latest_date,
            max({{ loaded_at_column }}) as latest_loaded_at
        from {{ this }}
    ) as built
    where
        built.latest_date is null
        or {{ date_expr }} >= {{ dbt.dateadd('day', -1 * var('mos__incremental_lookback_days'), 'built.latest_date') }}
        or {{ loaded_at_expr }} >= built.latest_loaded_at
{% endmacro %}


{#- Dates to rebuild for a model whose old rows can change with new data elsewhere (a customer id after an
    identity merge, a customer's region, a conversion's touches): the lookback window and every date where
    the rows computed now (`candidates`, the model's full result) differ from the table's, on every column of
    the table: per date, the number of rows and the sum of a hash of each row, computed both sides (a changed,
    new or vanished row changes its date's sum; two different sets of rows with the same count and sum would
    need a 64-bit hash collision). The model still computes every row; it writes only the dates that changed.
    Chosen over `except` both ways on every column (the same dates): an anti-join of millions of rows on
    twenty columns cost more than the attribution it guarded (issue 20, docs/DECISIONS.md). -#}
{% macro changed_dates(candidates, date_column) %}
    {%- set computed_columns = [] %}
    {%- set built_columns = [] %}
    {%- if execute %}
        {%- for column in adapter.get_columns_in_relation(this) %}
            {#- the candidates' values as the table types them (the hash of a value depends on its type) -#}
            {%- do computed_columns.append('cast(' ~ adapter.quote(column.name) ~ ' as ' ~ column.data_type ~ ')') %}
            {%- do built_columns.append(adapter.quote(column.name)) %}
        {%- endfor %}
    {%- endif %}
    select coalesce(computed.partition_date, built.partition_date) as partition_date
    from ({{ date_fingerprints(candidates, date_column, computed_columns) }}) as computed
    full outer join ({{ date_fingerprints(this, date_column, built_columns) }}) as built
        on computed.partition_date = built.partition_date
    where
        computed.row_count is distinct from built.row_count
        or computed.row_hash_sum is distinct from built.row_hash_sum
    union
    select {{ date_column }} as partition_date
    from {{ candidates }}
    where {{ date_column }} >= (
        select {{ dbt.dateadd('day', -1 * var('mos__incremental_lookback_days'), 'max(' ~ date_column ~ ')') }}
        from {{ this }}
    )
{% endmacro %}


{#- Per date of `rows`, the number of rows and the sum of the hash of each row's `columns`. -#}
{% macro date_fingerprints(rows, date_column, columns) %}
    select
        {{ date_column }} as partition_date,
        count(*) as row_count,
        sum(cast({{ row_hash(columns or [date_column]) }} as decimal(38, 0))) as row_hash_sum
    from {{ rows }}
    group by {{ date_column }}
{% endmacro %}


{#- A 64-bit hash of a row's values (`columns`: SQL expressions), nulls included: DuckDB's hash(), Spark's
    xxhash64(). -#}
{% macro row_hash(columns) -%}
    {{ return(adapter.dispatch('row_hash', 'mos_pipelines')(columns)) }}
{%- endmacro %}

{% macro default__row_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{% macro spark__row_hash(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}


{#- The final select of a model built with changed_dates: every row on a full build, the changed dates'
    rows on an incremental one. -#}
{% macro select_changed_dates(candidates, date_column) %}
    select * from {{ candidates }}
    {%- if is_incremental() %}
    where {{ date_column }} in ({{ changed_dates(candidates, date_column) }})
    {%- endif %}
{% endmacro %}
