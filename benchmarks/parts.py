"""Where a benchmark world's time goes: CPU seconds in the parts of a run.

    .venv/bin/python benchmarks/parts.py [small|medium|national]

Wraps the flow path's steps and the spam senders' composing with a CPU-time counter
(``time.process_time``: what other processes on the machine do counts less than in wall
time) and prints, for each part, its seconds and calls. Parts nest: a queue attempt holds
its sessions, a session its dialogue. What is left of the total is the SimPy processes of
spam senders and of the users whose mail goes through the engines.
"""

import collections
import functools
import sys
import time

from netsim.experiments.bench import bench_scenario
from netsim.world import flow, flow_queue, retrieval, run, spam
from netsim.world.dialogue import Dialogue

spent: collections.Counter[str] = collections.Counter()
calls: collections.Counter[str] = collections.Counter()


def timed(owner: object, name: str, label: str) -> None:
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args: object, **kwargs: object) -> object:
        started = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - started
            calls[label] += 1

    setattr(owner, name, wrapper)


for owner, name, label in (
        (flow.LegitFlow, "_created", "users: the hour's draws and rows"),
        (flow.LegitFlow, "_submit", "users: submissions"),
        (flow_queue.FlowQueues, "_attempt", "queues: attempts"),
        (flow_queue.FlowQueues, "_lookup", "queues: DNS lookups"),
        (flow_queue.FlowQueues, "_session", "queues: sessions"),
        (flow_queue.FlowQueues, "hand_off", "queues: hand-overs from the engines"),
        (flow_queue.FlowQueues, "take_handed", "queues: filing hand-overs"),
        (Dialogue, "decide", "dialogues (submissions and queues)"),
        (retrieval.Retrievals, "finish", "first retrievals"),
        (spam.SpamSessions, "compose", "spam: composing")):
    timed(owner, name, label)

scale = sys.argv[1] if len(sys.argv) > 1 else "small"
started = time.process_time()
run.simulate(bench_scenario(scale), records="summary")
total = time.process_time() - started
print(f"{scale}: {total:.2f} CPU s in all")
for label, seconds in spent.most_common():
    print(f"  {label:<40} {seconds:7.2f} s  {calls[label]:>9} calls")
