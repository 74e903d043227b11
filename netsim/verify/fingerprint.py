"""Fingerprints: a hash of a run's event trajectory, to catch any change in behaviour.

The fingerprint folds the time and type of every event SimPy processes, and the final
recipient table, into one SHA-256. It changes when anything the simulation does changes;
the stored value is updated on purpose only::

    python -m netsim.verify.fingerprint --update tests/data/fingerprint.json
"""

from __future__ import annotations

import hashlib
import json
import struct

from netsim.scenario import Scenario
from netsim.verify.stored import print_or_update
from netsim.world.build import CountingEnvironment, World

FINGERPRINT_SCENARIO = {
    "name": "fingerprint", "seed": 42, "duration_s": 3600,
    "isps": [{"name": n, "domain": f"{n}.example", "subscribers": 60,
              "dynamic_pool": f"10.{i}.0.0/24", "server_network": f"192.168.{i}.0/28",
              "bot_fraction": 0.05} for i, n in enumerate(("isp-a", "isp-b", "isp-c"), 1)],
    "links": [{"a": "isp-a", "b": "isp-b", "latency_s": 0.01},
              {"a": "isp-b", "b": "isp-c", "latency_s": 0.02}],
    "visited_networks": [{"name": "hotel", "prefix": "172.16.0.0/24", "upstream": "isp-b",
                          "eavesdrop_probability": 0.1}],
    "hosting_networks": [{"name": "hosting", "prefix": "100.64.0.0/24", "upstream": "isp-c"}],
    "users": {"sends_per_day": 24.0, "roaming_share": 0.1},
    "policy_presets": [{"preset": "op25b+587", "isps": ["isp-a"]}],
    "spam": {"botnets": [{"name": "b", "share": 1.0, "adaptive": True,
                          "strategies": ["direct", "isp_relay", "open_relay", "stolen_587"]}],
             "spammer_servers": [{"network": "hosting", "count": 1, "rate_per_day": 2000}],
             "open_relays": [{"network": "hosting", "count": 1}], "compromised_share": 0.05},
    "defences": {"greylisting": True},
}


class FingerprintEnvironment(CountingEnvironment):
    """Counts events and folds each one's time and type into a hash."""

    def __init__(self) -> None:
        super().__init__()
        self.digest = hashlib.sha256()

    def step(self) -> None:
        # SimPy keeps its schedule in a heap of (time, priority, id, event): the head is
        # the event about to be processed.
        at, _, _, event = self._queue[0]
        super().step()
        self.digest.update(struct.pack("<d", at))
        self.digest.update(type(event).__name__.encode())


def fingerprint(scenario: Scenario | None = None) -> dict[str, object]:
    """Run the fingerprint scenario and return its event count and trajectory hash."""
    scenario = scenario or Scenario.model_validate(FINGERPRINT_SCENARIO)
    env = FingerprintEnvironment()
    world = World(scenario, env=env)
    env.run(until=scenario.duration_s)
    world.ledger.check_conservation(world.held_rows())
    # the table's content, not its encoding: a change of storage is not a change of behaviour
    content = world.ledger.to_arrow().to_pydict()
    env.digest.update(json.dumps(content, sort_keys=True, default=repr).encode())
    return {"events": env.events_processed, "recipients": len(world.ledger),
            "sha256": env.digest.hexdigest()}


if __name__ == "__main__":
    print_or_update(fingerprint, "fingerprint", __doc__)
