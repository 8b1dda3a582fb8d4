{{ config(severity='error', meta={'dagster': {'ref': {'name': 'dim_customer_identity_map'}}}) }}
-- Gate against over-merging, measured against the data's own sizes rather than one fixed size (real people
-- can hold 21 CRM records: Splink's historical set). A customer fails when
--   * its CRM records fall in more than mos__identity_max_match_clusters_per_customer probabilistic match
--     clusters: the matcher told them apart as different people and identifiers (an email, a phone, a device)
--     joined them anyway, as a junk identifier that slipped past the guards does;
--   * it holds more CRM records than mos__identity_max_size_over_typical times the 99th percentile of CRM
--     records per customer of this build (customers with two or more; the percentile is used from
--     mos__identity_min_customers_for_size_quantile such customers) and at least
--     mos__identity_min_crm_records_flagged: a chain of bad links shows up as one customer far larger than
--     the rest;
--   * it holds more than mos__identity_max_users_per_customer user ids.
-- Figures behind the defaults: docs/DECISIONS.md, "Identity".
with

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

crm_matches as (

    select * from {{ ref('int_crm_contacts__matched') }}

),

sizes as (

    select
        identity_map.customer_id,
        count(*) filter (where identity_map.node_type = 'crm') as crm_records,
        count(distinct crm_matches.match_cluster_key) as match_clusters,
        count(*) filter (where identity_map.node_type = 'user') as user_ids
    from identity_map
    left join crm_matches
        on identity_map.node_type = 'crm'
            and identity_map.node_key = 'crm:' || crm_matches.contact_record_key
    group by identity_map.customer_id

),

typical as (

    select
        count(*) as customers,
        {{ quantile_cont("crm_records", 0.99) }} as p99_crm_records
    from sizes
    where crm_records >= 2

),

limits as (

    select
        greatest(
            {{ var('mos__identity_min_crm_records_flagged') }},
            case
                when customers >= {{ var('mos__identity_min_customers_for_size_quantile') }}
                    then {{ var('mos__identity_max_size_over_typical') }} * p99_crm_records
                else 0
            end
        ) as max_crm_records,
        p99_crm_records
    from typical

)

select
    sizes.*,
    limits.max_crm_records,
    limits.p99_crm_records
from sizes
cross join limits
where sizes.crm_records > limits.max_crm_records
    or sizes.match_clusters > {{ var('mos__identity_max_match_clusters_per_customer') }}
    or sizes.user_ids > {{ var('mos__identity_max_users_per_customer') }}
