"""Blueprints: a marketer's objective -> a computed goal -> a reviewable plan of workflow steps.

- ``objective``: the offline parser (words -> goal metric, segment, horizon, budget, target, constraints).
- ``context``: context providers, the only way the planner reads the warehouse (tools with typed parameters whose
  facts carry their SQL).
- ``rates`` and ``goal``: customers per dollar with a Gamma–Poisson interval; baseline + what the budget buys.
- ``plan``: the step catalogue, the file's models, validation, the rule-based planner.
- ``store``: the files under ``$MOS_HOME/blueprints/``: draft, write, load, validate, diff, approve.
- ``execution``: what each step does when an approved blueprint runs; ``ledger``: ``ops.step_runs``, one row per
  step per run with its $ split into LLM, sends and ad spend (read by status and resume).

No Dagster, no simulator (tests/unit/test_package_boundaries.py).
"""
