"""Policy as versioned, queryable data (``config/policy.yaml``): ICP fit and tiers, lead routing, contact policy.

- ``tables``: the ``policy`` schema's DDL and ``policy.versions`` (the content of every policy version used).
- ``icp``: fit score from firmographic rules, engagement with exponential decay, tiers A–D → ``policy.icp_scores``.
- ``routing``: declarative rules (first match wins, a catch-all last), account ownership, weighted round robin
  with capacity → ``policy.routing_assignments`` (a lead is routed once; a re-run routes only new leads).
- ``contact``: frequency caps in the person's time zone, quiet hours, cool-down after a conversion and per-action
  eligibility, as a function over the contact ledger → ``policy.contact_eligibility``.
- ``active``: which policy is in effect (``$MOS_HOME/policy/active.yaml`` written by ``mos policy apply``, else
  ``config/policy.yaml`` + ``MOS_POLICY_CONFIG``).
- ``change``: ``diff`` (what a proposed policy would change, read-only) and ``apply`` (make it active, logged in
  ``policy.applied``, the three tables recomputed in one transaction).

Plain modules: they take a DuckDB connection and settings and import neither Dagster nor the simulator.
"""
