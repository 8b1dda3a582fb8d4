{{ config(materialized='table') }}

{#
    One row per distinct traffic source seen in the events (UTM source + medium, referrer host,
    page host) with the channel it maps to. Precedence:
      1. a channel_mapping row matching both utm_source and utm_medium exactly;
      2. a row with one wildcard (`*`): medium-only or source-only, the lowest `priority` first
         (the shipped seed gives medium-only rows 20 and source-only rows 30, except linkedin 15);
      3. the `*,*` catch-all row, if the seed has one;
      4. UTM source or medium present but nothing matched: `other`;
      5. no UTM and no external referrer (none, or the same site): `direct`;
      6. no UTM, referrer is a search engine or other organic host (var mos__organic_referrer_domains): `organic`;
      7. no UTM, any other external referrer: `referral`.
    UTM values are matched trimmed and lower-cased.
#}
with

events as (

    select * from {{ ref('stg_segment__events') }}

),

channel_mapping as (

    select * from {{ ref('channel_mapping') }}

),

mapping_rules as (

    select
        {{ utm_key('utm_source') }} as rule_utm_source,
        {{ utm_key('utm_medium') }} as rule_utm_medium,
        channel,
        priority,
        case when trim(utm_source) = '*' then 1 else 0 end
        + case when trim(utm_medium) = '*' then 1 else 0 end as wildcard_count
    from channel_mapping

),

traffic_sources as (

    select distinct
        {{ utm_key('utm_source') }} as utm_source_key,
        {{ utm_key('utm_medium') }} as utm_medium_key,
        referrer_host,
        page_host
    from events

),

utm_pairs as (

    select distinct
        utm_source_key,
        utm_medium_key
    from traffic_sources
    where utm_source_key is not null or utm_medium_key is not null

),

utm_matches as (

    select
        utm_pairs.utm_source_key,
        utm_pairs.utm_medium_key,
        mapping_rules.channel,
        mapping_rules.wildcard_count,
        mapping_rules.rule_utm_source,
        row_number() over (
            partition by utm_pairs.utm_source_key, utm_pairs.utm_medium_key
            order by mapping_rules.wildcard_count, mapping_rules.priority, mapping_rules.channel
        ) as match_rank
    from utm_pairs
    inner join mapping_rules
        on (
            mapping_rules.rule_utm_source = '*'
            or utm_pairs.utm_source_key = mapping_rules.rule_utm_source
        )
        and (
            mapping_rules.rule_utm_medium = '*'
            or utm_pairs.utm_medium_key = mapping_rules.rule_utm_medium
        )

),

best_utm_matches as (

    select * from utm_matches
    where match_rank = 1

),

classified as (

    select
        traffic_sources.utm_source_key,
        traffic_sources.utm_medium_key,
        traffic_sources.referrer_host,
        traffic_sources.page_host,
        best_utm_matches.channel as utm_channel,
        case
            when best_utm_matches.wildcard_count = 0 then 'utm_source_medium'
            when best_utm_matches.wildcard_count = 2 then 'utm_catch_all'
            when best_utm_matches.rule_utm_source = '*' then 'utm_medium'
            when best_utm_matches.wildcard_count = 1 then 'utm_source'
        end as utm_rule,
        (
            traffic_sources.utm_source_key is not null
            or traffic_sources.utm_medium_key is not null
        ) as has_utm,
        (
            traffic_sources.referrer_host is not null
            and (
                traffic_sources.page_host is null
                or {{ site_host('traffic_sources.referrer_host') }}
                != {{ site_host('traffic_sources.page_host') }}
            )
        ) as has_external_referrer,
        {{ is_organic_referrer('traffic_sources.referrer_host') }} as is_organic_referrer
    from traffic_sources
    left join best_utm_matches
        on
            coalesce(traffic_sources.utm_source_key, '') = coalesce(best_utm_matches.utm_source_key, '')
            and coalesce(traffic_sources.utm_medium_key, '') = coalesce(best_utm_matches.utm_medium_key, '')

),

final as (

    select
        -- keys
        {{ surrogate_key(['utm_source_key', 'utm_medium_key', 'referrer_host', 'page_host']) }}
            as traffic_source_id,
        utm_source_key,
        utm_medium_key,
        referrer_host,
        page_host,

        -- dimensions
        case
            when utm_channel is not null then utm_channel
            when has_utm then 'other'
            when not has_external_referrer then 'direct'
            when is_organic_referrer then 'organic'
            else 'referral'
        end as channel,
        case
            when utm_channel is not null then utm_rule
            when has_utm then 'utm_unmapped'
            when not has_external_referrer then 'direct'
            when is_organic_referrer then 'referrer_organic'
            else 'referrer'
        end as channel_rule

    from classified

)

select * from final
