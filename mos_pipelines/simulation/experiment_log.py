"""A randomized experiment log with per-unit features, drawn from the world's true response model.

For offline evaluation of a (contextual) policy without building a world: the scenario's population is
built (people and their attributes only), every send picks a variant of one email campaign uniformly at
random, and the reward is a click drawn from the recipient's true click probability (the variant's regional
rate × the scenario's ``segment_effects`` for the recipient, × (1 − bounce rate)). A person can be sent to
several times (``sends_per_person``), at random positions in the log's time order. ``missing_rate`` blanks
that share of the feature values (real logs are sparse).

Returns the log (what ``mos experiments evaluate --context-columns`` reads) and, row by row, the true click
probability of every variant (the truth a replay estimate is checked against: the best single arm, the
per-unit oracle).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mos_pipelines.simulation.geography import REGIONS
from mos_pipelines.simulation.population import build_population, segment_attributes
from mos_pipelines.simulation.response import ResponseModel
from mos_pipelines.simulation.scenario import Scenario
from mos_pipelines.simulation.streams import Stream, rng

FEATURES = ("persona", "size_band", "seniority", "industry", "region", "signup_recency", "engagement")


class ExperimentLogError(ValueError):
    """The log cannot be drawn (no such campaign, a bad option); the message says what was expected."""


@dataclass(frozen=True)
class ExperimentLog:
    log: pd.DataFrame  # unit_id, the FEATURES, variant, clicked, propensity; in time order
    true_rates: pd.DataFrame  # per log row: true click probability of each variant (columns = variants)

    def best_single_arm(self) -> tuple[str, float]:
        """The variant with the highest true average reward over the log's rows, and that reward."""
        means = self.true_rates.mean()
        return str(means.idxmax()), float(means.max())

    def oracle(self) -> float:
        """True average reward of sending each row its own best variant."""
        return float(self.true_rates.max(axis=1).mean())


def randomized_log(
    seed: int,
    people: int,
    scenario: Scenario,
    campaign_id: str | None = None,
    sends_per_person: int = 1,
    missing_rate: float = 0.0,
    start_date: datetime.date = datetime.date(2026, 1, 1),
) -> ExperimentLog:
    """A uniformly randomized log of ``people`` × ``sends_per_person`` sends of one email campaign."""
    specs = {spec.campaign_id: spec for spec in scenario.email_campaigns}
    if not specs:
        raise ExperimentLogError(f"scenario {scenario.name!r} ({scenario.path}) has no email campaign to log")
    campaign_id = campaign_id or next(iter(specs))
    if campaign_id not in specs:
        raise ExperimentLogError(
            f"campaign {campaign_id!r} is not an email campaign of {scenario.name!r} ({', '.join(specs)})"
        )
    if not 0 <= missing_rate < 1:
        raise ExperimentLogError(f"missing_rate must be in [0, 1), got {missing_rate}")
    spec = specs[campaign_id]
    population = build_population(seed, people, scenario, start_date)
    factor = population.propensity_factor
    region_factor = np.array(
        [
            factor[population.region_idx == r].mean() if (population.region_idx == r).any() else 1.0
            for r in range(len(REGIONS))
        ]
    )
    response = ResponseModel(scenario, region_factor)
    generator = rng(seed, Stream.EXPERIMENT_LOG)
    person = generator.permutation(np.repeat(np.arange(people), max(1, sends_per_person)))
    k = len(spec.variants)
    variant = generator.integers(0, k, len(person))
    region = population.region_idx[person]
    attributes = segment_attributes(population, person)
    delivered = 1.0 - scenario.email.bounce_rate
    true = np.column_stack(
        [delivered * response.recipient_rates(campaign_id, v.variant_id, region, attributes)[1] for v in spec.variants]
    )
    clicked = generator.random(len(person)) < true[np.arange(len(person)), variant]
    people_frame = population.people
    features = {
        **{a: attributes[a] for a in ("persona", "size_band", "seniority", "industry", "signup_recency")},
        "region": people_frame["region"].to_numpy()[person],
        "engagement": np.round(population.engagement[person], 4),
    }
    log = pd.DataFrame(
        {
            "unit_id": people_frame["marketing_email"].to_numpy()[person],
            **{name: features[name] for name in FEATURES},
            "variant": np.asarray([v.variant_id for v in spec.variants], dtype=object)[variant],
            "clicked": clicked.astype(int),
            "propensity": round(1.0 / k, 6),
        }
    )
    if missing_rate > 0:
        for name in FEATURES:
            blank = generator.random(len(log)) < missing_rate
            log[name] = log[name].astype(object).where(~blank, "")
    return ExperimentLog(log, pd.DataFrame(true, columns=[v.variant_id for v in spec.variants]))
