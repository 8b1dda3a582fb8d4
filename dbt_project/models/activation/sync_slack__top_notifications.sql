{#-
    The notifications the team's Slack channel should see: the top open notifications of
    insights.notifications (status `new`), most severe first, then newest. The table is written by
    Python assets (lookalike degradation today, the insights hub later); before any of them ran
    the model is empty. When the table carries a `rank` column (the insights hub's ranking), rank
    decides the order within a severity. The hub notifies each reader separately; when the table
    carries `insight_id`, an insight notified to several readers is posted once (its best rank).
-#}
{%- set columns = {
    'notification_id': 'varchar', 'created_at': 'timestamp with time zone', 'source': 'varchar',
    'severity': 'varchar', 'subject': 'varchar', 'title': 'varchar', 'message': 'varchar',
    'metric': 'varchar', 'figure': 'double', 'previous_figure': 'double', 'suggested_action': 'varchar',
    'status': 'varchar'
} -%}
{%- set present = (
    adapter.get_columns_in_relation(source('insights', 'notifications')) | map(attribute='name') | list
) if source_exists('insights', 'notifications') else [] -%}
{%- set has_rank = 'rank' in present -%}
{%- set has_insight = 'insight_id' in present -%}
{%- do columns.update({'rank': 'integer'} if has_rank else {}) -%}
{%- do columns.update({'insight_id': 'varchar'} if has_insight else {}) -%}
{%- set dedup_key = 'coalesce(insight_id, notification_id)' if has_insight else 'notification_id' -%}

with

notifications as (

    select * from {{ optional_source('insights', 'notifications', columns) }} as notification_rows

),

deduplicated as (

    select
        *,
        row_number() over (
            partition by {{ dedup_key }}
            order by {% if has_rank %}rank nulls last, {% endif %}created_at desc, notification_id
        ) as duplicate_rank
    from notifications
    where status = 'new'

),

open_notifications as (

    select * from deduplicated
    where duplicate_rank = 1

),

ranked as (

    select
        *,
        cast(row_number() over (
            order by
                case lower(severity) when 'critical' then 0 when 'warning' then 1 when 'info' then 2 else 3 end,
                {% if has_rank %}rank nulls last,{% endif %}
                created_at desc,
                notification_id
        ) as bigint) as notification_rank  -- row_number() is an int on Spark, the contract says bigint
    from open_notifications

),

final as (

    select
        -- keys
        notification_id,

        -- dimensions
        notification_rank,
        source as notification_source,
        severity,
        subject,
        title,
        message,
        metric,
        suggested_action,

        -- metrics
        figure,
        previous_figure,

        -- timestamps
        created_at

    from ranked
    where notification_rank <= {{ var('mos__activation_sync_models')['sync_slack__top_notifications']['top_n'] }}

)

select * from final
