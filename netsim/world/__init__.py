"""The world layer: a scenario becomes a topology, servers and populations, and one run.

Its names are imported when first used: a sweep's parent process, which writes results but
simulates nothing, does not load the simulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsim.lazy import lazy_names

if TYPE_CHECKING:
    from netsim.world.build import World
    from netsim.world.results import write_results
    from netsim.world.run import RunResult, simulate
    from netsim.world.streams import Streams

_WHERE = {"World": "build", "write_results": "results", "RunResult": "run",
          "simulate": "run", "Streams": "streams"}

__all__ = ["RunResult", "Streams", "World", "simulate", "write_results"]


__getattr__ = lazy_names(__name__, _WHERE)
