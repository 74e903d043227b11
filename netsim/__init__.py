"""netsim: a discrete-event simulation of Internet mail abuse and defence.

The Python API for scripts and notebooks::

    import netsim
    result = netsim.run(overrides=["policy=op25b+587"])   # the embedded default world
    result.recipients_frame()      # pandas: one row per message recipient
    result.timeseries_frame()      # pandas: hourly counts
    result.summary["counts"]       # {kind: {outcome: n}}

Its names are imported when first used: the command line, and a sweep's parent process,
load only what their command needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from netsim.lazy import lazy_names

__version__ = "0.1.0"

if TYPE_CHECKING:
    from netsim.mail import Tracer
    from netsim.scenario import Scenario, ScenarioError, load_scenario
    from netsim.world import RunResult, World, simulate

_WHERE = {"Tracer": "mail", "Scenario": "scenario", "ScenarioError": "scenario",
          "load_scenario": "scenario", "RunResult": "world", "World": "world",
          "simulate": "world"}


def run(scenario: Scenario | str | Path | None = None, *, overrides: list[str] | None = None,
        seed: int | None = None, replication: int = 0) -> RunResult:
    """Simulate a scenario (a Scenario, a YAML file, or None for the embedded default world)
    with optional ``dotted.key=value`` overrides, and return its results."""
    from netsim.scenario import Scenario, load_scenario
    from netsim.world import simulate

    if not isinstance(scenario, Scenario):
        extra = [*(overrides or []), *([f"seed={seed}"] if seed is not None else [])]
        scenario = load_scenario(scenario, extra)
    else:
        if overrides:
            from netsim.scenario.load import apply_overrides, validate
            data = apply_overrides(scenario.model_dump(mode="json"), overrides, "<scenario>")
            scenario = validate(data, "<scenario>")
        if seed is not None:
            scenario = scenario.model_copy(update={"seed": seed})
    return simulate(scenario, replication=replication)


__all__ = [
    "RunResult", "Scenario", "ScenarioError", "Tracer", "World", "__version__",
    "load_scenario", "run", "simulate",
]


__getattr__ = lazy_names(__name__, _WHERE)
