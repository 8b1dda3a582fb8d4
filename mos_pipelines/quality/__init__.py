"""Blocking data-quality gates: thresholds (config/quality.yaml), GX suites (quality/suites/) and
the gate functions the Dagster checks in ``mos_pipelines/defs/quality`` call."""
