"""Decisioning: one next best action per person and day, under the contact policy, with its explanation.

``engine`` arbitrates (plain frames in, decisions and explanations out), ``learning`` estimates P(response |
action, person) from the decisions already taken and the conversions that followed, ``warehouse`` reads what the
engine needs and writes ``decisions.*``. No Dagster, no simulator.
"""
