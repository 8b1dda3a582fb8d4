{#-
    Buying group of every account (int_customers__firmographics.account_key): who is engaged, in which
    persona, and whether the group is complete. Settings: var mos__buying_group (personas,
    engaged_min_score on the 90-day engagement score, required_personas, min_personas).
-#}
{%- set settings = var('mos__buying_group') -%}
{%- set personas = settings.get('personas', []) -%}
{%- set required = settings.get('required_personas', []) -%}
{%- for persona in required if persona not in personas -%}
    {{ exceptions.raise_compiler_error(
        "var mos__buying_group.required_personas lists '" ~ persona ~ "', which is not in mos__buying_group.personas " ~ personas
    ) }}
{%- endfor -%}

with

firmographics as (

    select * from {{ ref('int_customers__firmographics') }}

),

activity as (

    select * from {{ ref('int_customers__activity') }}

),

contacts as (

    select
        firmographics.account_key,
        firmographics.customer_id,
        coalesce(firmographics.persona, 'unknown') as persona,
        activity.engagement_score_90d,
        activity.engagement_score_90d >= {{ settings.get('engaged_min_score', 1) }} as is_engaged,
        activity.completed_order_count,
        activity.last_activity_at
    from firmographics
    inner join activity
        on firmographics.customer_id = activity.customer_id
    where firmographics.account_key is not null

),

engaged_personas as (

    select distinct
        account_key,
        persona
    from contacts
    where is_engaged and persona != 'unknown'

),

persona_lists as (

    select
        account_key,
        count(*) as engaged_persona_count,
        {{ dbt.listagg('persona', "','", 'order by persona') }} as engaged_personas
    from engaged_personas
    group by account_key

),

accounts as (

    select
        account_key,
        count(*) as contact_count,
        count(case when is_engaged then 1 end) as engaged_contact_count,
        {%- for persona in personas %}
        count(case when is_engaged and persona = '{{ persona }}' then 1 end) as engaged_{{ persona }}_count,
        {%- endfor %}
        count(case when is_engaged and persona = 'unknown' then 1 end) as engaged_unknown_persona_count,
        cast(sum(engagement_score_90d) as double) as engagement_score_90d,
        count(case when completed_order_count > 0 then 1 end) as customer_contact_count,
        max(last_activity_at) as last_activity_at
    from contacts
    group by account_key

),

final as (

    select
        accounts.*,
        coalesce(persona_lists.engaged_persona_count, 0) as engaged_persona_count,
        persona_lists.engaged_personas,
        (
            coalesce(persona_lists.engaged_persona_count, 0) >= {{ settings.get('min_personas', 1) }}
            {%- for persona in required %}
            and accounts.engaged_{{ persona }}_count > 0
            {%- endfor %}
        ) as is_buying_group_complete
    from accounts
    left join persona_lists
        on accounts.account_key = persona_lists.account_key

)

select * from final
