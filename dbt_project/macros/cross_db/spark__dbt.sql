{#
    Spark implementations of dbt's cross-database macros where dbt-spark's own differ from DuckDB in meaning
    (dbt_project.yml `dispatch` puts this project first in dbt's search order).

    listagg: dbt-spark ignores `order by` (collect_list has no order); here the values are sorted by the order-by
    expressions (then by the value), so the text is the one DuckDB writes. Ascending keys only, as every model uses.
    split_part: Spark's own split_part (3.3+) — a literal delimiter, '' past the last part, as DuckDB.
    cast: the type names the project declares (DuckDB's, in contracts, optional_source columns and casts through
    dbt.cast) as Spark's: varchar -> string, timestamp with time zone -> timestamp (Spark's timestamp is an instant,
    shown in the session time zone, UTC), json -> string.
#}
{% macro spark_type(data_type) -%}
    {%- set name = data_type | trim | lower -%}
    {%- set names = {
        'varchar': 'string', 'text': 'string', 'json': 'string',
        'timestamptz': 'timestamp', 'timestamp with time zone': 'timestamp',
        'ubigint': 'decimal(20, 0)', 'hugeint': 'decimal(38, 0)',
    } -%}
    {{ return(names.get(name, data_type)) }}
{%- endmacro %}


{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ spark_type(type) }})
{%- endmacro %}


{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- set keys = [] -%}
    {%- if order_by_clause -%}
        {%- set clause = order_by_clause | trim -%}
        {%- if clause[:8] | lower != 'order by' -%}
            {{ exceptions.raise_compiler_error("listagg on Spark: expected 'order by …', got " ~ order_by_clause) }}
        {%- endif -%}
        {%- for key in clause[8:].split(',') -%}
            {%- set key = key | trim -%}
            {%- if key.split(' ') | length > 1 and key.split(' ')[-1] | lower in ('asc', 'desc') -%}
                {%- if key.split(' ')[-1] | lower == 'desc' -%}
                    {{ exceptions.raise_compiler_error("listagg on Spark: descending keys are not supported: " ~ key) }}
                {%- endif -%}
                {%- set key = key.rsplit(' ', 1)[0] -%}
            {%- endif -%}
            {%- do keys.append(key) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set fields = [] -%}
    {%- for key in keys -%}
        {%- do fields.append(key ~ ' as k' ~ loop.index) -%}
    {%- endfor -%}
    {%- do fields.append(measure ~ ' as v') -%}
    {%- set collected -%}
        array_sort(collect_list(case when ({{ measure }}) is not null then struct({{ fields | join(', ') }}) end))
    {%- endset -%}
    {%- set limited = 'slice(' ~ collected ~ ', 1, ' ~ limit_num ~ ')' if limit_num else collected -%}
    array_join(transform({{ limited }}, item -> item.v), {{ delimiter_text }})
{%- endmacro %}


{#- datediff as DuckDB's date_diff: a bigint (Spark's datediff is an int; the contracts say bigint), and hours,
    minutes and seconds counted as boundaries crossed (dbt-spark counts whole hours elapsed: 1 h less for 10:50 to
    12:10). UTC session, so the boundaries are DuckDB's. -#}
{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- set seconds = {'hour': 3600, 'minute': 60, 'second': 1}.get(datepart | lower) -%}
    {%- if seconds -%}
        cast(
            floor(unix_seconds(cast({{ second_date }} as timestamp)) / {{ seconds }})
            - floor(unix_seconds(cast({{ first_date }} as timestamp)) / {{ seconds }})
        as bigint)
    {%- else -%}
        cast({{ dbt.spark__datediff(first_date, second_date, datepart) }} as bigint)
    {%- endif -%}
{%- endmacro %}


{% macro spark__split_part(string_text, delimiter_text, part_number) -%}
    split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
{%- endmacro %}


{#-
    Seed rows on a Spark of this machine (the profile's host `local`, `localhost` or 127.0.0.1: the `session` method,
    or a Thrift server here) read from the CSV file as DuckDB's seeds are (dbt-duckdb copies the file): an empty cell
    is null, the text `null` stays text. dbt-spark's own loader goes through agate, which reads both as null, and its
    `session` connection writes a null as the text 'None'. On a remote cluster (the file is not there) dbt-spark's
    own. (`target.method` is not in dbt-spark's target context: the host says where Spark runs.)
-#}
{% macro spark__load_csv_rows(model, agate_table) -%}
    {%- if target.host not in ('local', 'localhost', '127.0.0.1') -%}
        {{ return(dbt.spark__load_csv_rows(model, agate_table)) }}
    {%- endif -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set path = model['root_path'] ~ '/' ~ model['original_file_path'] -%}
    {%- set view = this.identifier ~ '__mos_csv' -%}
    {%- set read -%}
        create or replace temporary view {{ view }}
        using csv
        options (path '{{ path | replace("\\", "\\\\") | replace("'", "\\'") }}', header 'true', multiLine 'true', escape '"', delimiter '{{ config.get('delimiter', ',') }}')
    {%- endset -%}
    {%- set sql -%}
        insert into {{ this.render() }}
        select
            {%- for name in agate_table.column_names %}
            cast(`{{ name }}` as {{ spark_type(column_override.get(name, adapter.convert_type(agate_table, loop.index0))) }})
            {{- ',' if not loop.last }}
            {%- endfor %}
        from {{ view }}
    {%- endset -%}
    {%- do adapter.add_query(read, abridge_sql_log=True) -%}
    {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
    {{ return(sql) }}
{%- endmacro %}


{% macro spark__create_csv_table(model, agate_table) -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set quote_seed_column = model['config'].get('quote_columns', None) -%}
    {%- set sql -%}
        create table {{ this.render() }} (
            {%- for name in agate_table.column_names -%}
                {{ adapter.quote_seed_column(name | string, quote_seed_column) }}
                {{ spark_type(column_override.get(name, adapter.convert_type(agate_table, loop.index0))) }}
                {{- ', ' if not loop.last -}}
            {%- endfor -%}
        )
        {{ file_format_clause() }}
    {%- endset -%}
    {%- call statement('_') -%}{{ sql }}{%- endcall -%}
    {{ return(sql) }}
{%- endmacro %}
