"""One run: build the world, simulate, check conservation, summarise."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

import netsim
from netsim.mail import Ledger, Tracer
from netsim.scenario import Scenario
from netsim.world import report
from netsim.world.build import World


@dataclass
class RunResult:
    """What a run produced: the summary (as written to summary.json) and the recipient table."""

    scenario: Scenario
    summary: dict[str, Any]
    recipients: pa.Table
    timeseries: pa.Table

    def recipients_frame(self) -> pd.DataFrame:
        """One row per message recipient (docs/model.md "What is measured")."""
        return self.recipients.to_pandas()

    def timeseries_frame(self) -> pd.DataFrame:
        """Hourly counts by kind, origin ISP and outcome."""
        return self.timeseries.to_pandas()


def simulate(scenario: Scenario, *, replication: int = 0, tracer: Tracer | None = None,
             records: str = "full", setup: Callable[[World], None] | None = None,
             ) -> RunResult:
    """Run a scenario to its end and return its results; raises ConservationError if a
    recipient was lost or counted twice. With ``records="summary"`` the recipient table
    of the result is empty: the summary and the hourly series are counted in place.
    ``setup`` is called with the world once it is built, before it runs: to give servers
    policies of one's own (``netsim.mail.policy``), say.

    With a ``tracer`` the run stops as soon as the traced journey is over
    (:meth:`Tracer.over`), or at the scenario's end: the results then cover the simulated
    time only (``sim_seconds``), with the recipients still in flight pending."""
    if tracer is not None and scenario.fidelity == "flow":
        # a trace follows its messages through the engines (docs/fidelity.md)
        scenario = scenario.model_copy(update={"fidelity": "session"})
    started = time.perf_counter()
    world = World(scenario, replication=replication, tracer=tracer)
    if setup is not None:
        setup(world)
    if tracer is None:
        world.env.run(until=scenario.duration_s)
    else:
        _run_journey(world, tracer)
    world.finish()
    world.ledger.check_conservation(world.held_rows())
    wall = time.perf_counter() - started
    if records == "summary":   # count in place: no table of recipients is built
        cols: report.RecipientColumns = report.LedgerColumns(world.ledger)
        recipients = len(world.ledger)
    else:
        cols = report.RecipientColumns(world.ledger.to_arrow(release=True))
        recipients = cols.table.num_rows
    summary = {
        "netsim_version": netsim.__version__,
        "scenario": scenario.name,
        "seed": scenario.seed,
        "replication": replication,
        "params": scenario.model_dump(mode="json"),
        "counts": world.ledger.counts(),
        "stopped_by": report.stopped_by(cols),
        "spam_by_origin": report.spam_by_origin(cols),
        "legit_delivery": report.legit_delivery(cols),
        "legit_groups": report.legit_groups(cols),
        "legit_by_origin": report.legit_by_origin(cols),
        "legit_delay": report.legit_delay(cols),
        "credentials": world.credentials.summary(),
        "mailboxes": world.mailboxes(),
        "sim": {
            "messages": world.messages_created,
            "recipients": recipients,
            "sessions": sum(s.stats_sessions for s in world.servers),
            "events": world.env.events_processed,
            "sim_seconds": world.env.now,
            "wall_seconds": round(wall, 3),
            "out_of_order": world.out_of_order(),
        },
    }
    timeseries = report.timeseries(cols)
    table = cols.table if records != "summary" else Ledger().to_arrow()
    return RunResult(scenario, summary, table, timeseries)


def _run_journey(world: World, tracer: Tracer) -> None:
    """Simulate until the traced journey is over, or to the scenario's end.

    The journey is asked at the end of an instant only: a process started in that instant
    (a MUA taking custody of a new message) has then run its first step, so every pending
    recipient is held by a queue or an outbox and the conservation check holds."""
    env, ledger, end = world.env, world.ledger, world.scenario.duration_s
    while env.peek() < end:
        env.step()
        if env.peek() > env.now and tracer.over(ledger):
            return
    env.run(until=end)   # no event left before the end: the clock moves to it
