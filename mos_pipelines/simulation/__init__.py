"""A deterministic, vectorised simulated marketing world.

``generate_world`` writes a landing zone that follows ``ingestion/contracts.py`` to
``$MOS_HOME/landing`` and the truth behind it to ``$MOS_HOME/truth``; the same ``WorldConfig``
always gives byte-identical files. Evaluation against that truth lives here too, so no production module
imports the simulator: ``closed_loop`` (bandits against the world's responses), ``insight_truth`` and
``insights_evaluation`` (every accepted insight against the generating process).
"""

from mos_pipelines.simulation.config import WorldConfig, WorldSummary
from mos_pipelines.simulation.scenario import Scenario, ScenarioError, load_scenario
from mos_pipelines.simulation.world import generate_world

__all__ = ["Scenario", "ScenarioError", "WorldConfig", "WorldSummary", "generate_world", "load_scenario"]
