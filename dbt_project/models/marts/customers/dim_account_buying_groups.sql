-- Buying group of every account: engaged contacts per persona, engagement, completeness (var mos__buying_group).
with

buying_groups as (

    select * from {{ ref('int_accounts__buying_groups') }}

),

final as (

    -- columns follow var mos__buying_group.personas
    select * from buying_groups  -- noqa: AM04

)

select * from final  -- noqa: AM04
