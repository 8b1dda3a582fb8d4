{#
    Erasure requests in staging.

    not_erased(exprs): true for a raw row none of whose identifier expressions hashes to an identifier of an
        erased person (ops.erasure_identifiers: SHA-256 of 'mos-erasure-v1:' and the trimmed, lower-cased value,
        as erasure.sha in mos_pipelines/crm/erasure.py; written by the Python asset ops/erasure_identifiers right
        before dbt runs). That asset also deletes these rows from raw; the filter keeps them out of staging when raw is loaded without it. A null value
        passes. Plain `true` while there is no request (the views are recreated by every build, after that asset),
        so a warehouse without erasures hashes nothing. An uncorrelated IN, not a correlated NOT EXISTS (the
        DuckDB 2.0.0 cache bug).
#}
{% macro not_erased(exprs) -%}
    {%- set hashes = optional_source('ops', 'erasure_identifiers', {'identifier_hash': 'varchar'}) -%}
    {%- set requested = source_exists('ops', 'erasure_identifiers') -%}
    {%- if requested -%}
        {%- set counted = run_query('select count(*) from ' ~ source('ops', 'erasure_identifiers')) -%}
        {%- set requested = counted.columns[0].values()[0] > 0 -%}
    {%- endif -%}
    {%- if not requested -%}
    true
    {%- else -%}
    {%- for expr in exprs %}
    coalesce(
        {{ sha256_hex("'mos-erasure-v1:' || lower(trim(cast(" ~ expr ~ " as " ~ dbt.type_string() ~ ")))") }} not in (
            select erased.identifier_hash from {{ hashes }} as erased
            where erased.identifier_hash is not null
        ),
        true
    ){{ " and" if not loop.last }}
    {%- endfor %}
    {%- endif -%}
{%- endmacro %}
