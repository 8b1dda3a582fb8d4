"""MOS Pipelines."""
