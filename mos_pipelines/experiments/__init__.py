"""Experiments: persistent holdouts, Thompson-sampling variant and budget allocation, A/B statistics,
and offline policy evaluation (plain logic, no Dagster). The closed loop against the simulated world is
``mos_pipelines.simulation.closed_loop``."""
