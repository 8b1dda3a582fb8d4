-- One row per day for MetricFlow's time spine (metric_time joins, cumulative metrics). The range covers
-- any simulated or real marketing history with room to spare, at a few thousand rows. dbt's date_spine is
-- portable (a numbers table from cross joins), unlike a warehouse's own series function.
with days as (

    {{ dbt.date_spine('day', "cast('2020-01-01' as date)", "cast('2036-01-01' as date)") }}

)

select cast(date_day as date) as date_day
from days
