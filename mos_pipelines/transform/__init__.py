"""The dbt project seen from Python: its manifest (prepared by commands, read by the definitions) and the
split of the build into steps around the quality gates. No Dagster here (the translator is in defs/transform)."""
