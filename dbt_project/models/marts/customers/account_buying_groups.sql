-- Buying group of every account: engaged contacts per persona, engagement, completeness (var mos__buying_group).
with

buying_groups as (

    select * from {{ ref('int_accounts__buying_groups') }}

),

final as (

    select * from buying_groups

)

select * from final
