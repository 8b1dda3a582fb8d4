"""A deterministic, vectorised simulated marketing world (DESIGN.md §3).

``generate_world`` writes a landing zone that follows ``ingestion/contracts.py`` to
``$MOS_HOME/landing`` and the truth behind it to ``$MOS_HOME/truth``; the same ``WorldConfig``
always gives byte-identical files.
"""

from mos_pipelines.simulation.config import WorldConfig, WorldSummary
from mos_pipelines.simulation.scenario import Scenario, ScenarioError, load_scenario
from mos_pipelines.simulation.world import generate_world

__all__ = ["Scenario", "ScenarioError", "WorldConfig", "WorldSummary", "generate_world", "load_scenario"]
