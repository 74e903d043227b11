"""Scenario files: the schema of a world and how it is read, overridden and validated."""

from netsim.scenario.load import (
    ScenarioError,
    ScenarioProblem,
    load_scenario,
    scenario_yaml,
)
from netsim.scenario.schema import Scenario

__all__ = ["Scenario", "ScenarioError", "ScenarioProblem", "load_scenario", "scenario_yaml"]
