"""The simulator's true propensity per customer, to score lookalike rankings against the truth."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mos_pipelines.identity.truth_eval import person_by_customer


def true_propensity_by_customer(con, truth_dir: Path) -> pd.Series | None:
    """customer_id → true propensity of the person most of its records belong to; None without truth files."""
    identity, people = truth_dir / "identity_truth.csv", truth_dir / "people.csv"
    if not identity.is_file() or not people.is_file():
        return None
    majority = person_by_customer(con, identity)
    if majority.empty:
        return None
    propensity = pd.read_csv(people, usecols=["person_id", "propensity"]).set_index("person_id")["propensity"]
    return majority.map(propensity).dropna()
