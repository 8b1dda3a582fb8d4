"""The dbt project on Spark (issue 21): a local Spark session (dbt-spark's `session` method), the raw layer DuckDB
holds exported to parquet and registered as Spark tables, the dbt Python models run beside dbt, and a comparison of
every mart with the DuckDB build. Plain modules: no Dagster, no simulator. docs/SPARK.md says how to use it."""
