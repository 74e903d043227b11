"""What a flow step's SMTP dialogue costs in a small world: the dialogues of one run of a
study, captured and decided again.

    .venv/bin/python benchmarks/dialogues.py [STUDY.yaml] [PASSES]

Runs the study's first run (``experiments/traveller.yaml`` by default), keeps every
dialogue of its steps (``netsim.world.dialogue.Dialogue``, up to 400, evenly spread), then
decides them all again ``PASSES`` times (five by default) and prints the microseconds a
dialogue of each pass and their median. Deciding again asks stateful policies a second
time, so the replies may differ from the run's: this measures the cost, not the answers.
"""

import statistics
import sys
import time
from typing import Any

from netsim.experiments.study import plan
from netsim.scenario.load import validate
from netsim.world import dialogue
from netsim.world.columns import Columns
from netsim.world.run import simulate

KEPT = 400


def captured(study: str) -> list[tuple[Any, ...]]:
    """The dialogues of the study's first run: what each was made from."""
    made: list[tuple[Any, ...]] = []
    init = dialogue.Dialogue.__init__

    def keep(self: dialogue.Dialogue, servers: Any, ledger: Any, s: Columns, r: Columns,
             helo: Any) -> None:
        init(self, servers, ledger, s, r, helo)
        made.append((servers, ledger, s, r, helo))

    dialogue.Dialogue.__init__ = keep   # type: ignore[method-assign]
    try:
        spec = plan(study).runs[0]
        simulate(validate(spec.scenario, spec.run_id), records="summary")
    finally:
        dialogue.Dialogue.__init__ = init   # type: ignore[method-assign]
    step = max(1, len(made) // KEPT)
    return made[::step][:KEPT]


def fresh(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A dialogue's arguments with its columns unread (a dialogue caches what it reads)."""
    servers, ledger, s, r, helo = args
    return (servers, ledger, Columns(dict(s._base), s._index), Columns(dict(r._base), r._index),
            helo)


def main() -> None:
    study = sys.argv[1] if len(sys.argv) > 1 else "experiments/traveller.yaml"
    passes = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    dialogues = captured(study)
    sessions = statistics.mean(len(d[2]) for d in dialogues)
    recipients = statistics.mean(len(d[3]) for d in dialogues)
    print(f"{study}: {len(dialogues)} dialogues, {sessions:.1f} sessions and "
          f"{recipients:.1f} recipients on average")
    costs = []
    for _ in range(passes):
        made = [fresh(d) for d in dialogues]
        started = time.perf_counter()
        for args in made:
            dialogue.Dialogue(*args).decide()
        costs.append((time.perf_counter() - started) / len(made) * 1e6)
    print("µs a dialogue:", " ".join(f"{c:.1f}" for c in costs),
          f"(median {statistics.median(costs):.1f})")


if __name__ == "__main__":
    main()
