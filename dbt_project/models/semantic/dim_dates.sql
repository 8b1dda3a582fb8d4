-- One row per day for MetricFlow's time spine (metric_time joins, cumulative metrics). The range covers
-- any simulated or real marketing history with room to spare, at a few thousand rows.
with days as (
    select cast(generate_series as date) as date_day
    from generate_series(date '2020-01-01', date '2035-12-31', interval 1 day)
)

select date_day from days
