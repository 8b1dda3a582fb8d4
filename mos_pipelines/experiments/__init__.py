"""Experiments: persistent holdouts, Thompson-sampling variant and budget allocation, A/B statistics,
offline policy evaluation and the closed loop against the simulated world (plain logic, no Dagster)."""
