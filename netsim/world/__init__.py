"""The world layer: a scenario becomes a topology, servers and populations, and one run."""

from netsim.world.build import World
from netsim.world.results import write_results
from netsim.world.run import RunResult, simulate
from netsim.world.streams import Streams

__all__ = ["RunResult", "Streams", "World", "simulate", "write_results"]
