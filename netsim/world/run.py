"""One run: build the world, simulate, check conservation, summarise."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import netsim
from netsim.mail import Ledger, Tracer
from netsim.mail.ledger import ConservationError
from netsim.scenario import Scenario
from netsim.world import report
from netsim.world.build import World
from netsim.world.estimate import estimate
from netsim.world.helper import Helper, helper_pays
from netsim.world.sinks import ParquetRows, Sample, Sinks


@dataclass
class RunResult:
    """What a run produced: the summary (as written to summary.json) and the recipient table."""

    scenario: Scenario
    summary: dict[str, Any]
    recipients: pa.Table
    timeseries: pa.Table
    recipients_file: Path | None = None   # where every row was written, if it was

    def recipients_frame(self) -> pd.DataFrame:
        """One row per message recipient (docs/model.md "What is measured")."""
        if self.recipients_file is not None:
            return pq.read_table(self.recipients_file).to_pandas()
        return self.recipients.to_pandas()

    def timeseries_frame(self) -> pd.DataFrame:
        """Hourly counts by kind, origin ISP and outcome."""
        return self.timeseries.to_pandas()


def simulate(scenario: Scenario, *, replication: int = 0, tracer: Tracer | None = None,
             records: str = "full", setup: Callable[[World], None] | None = None,
             recipients_file: Path | None = None, threaded: bool | None = None) -> RunResult:
    """Run a scenario to its end and return its results; raises ConservationError if a
    recipient was lost or counted twice. With ``records="summary"`` the recipient table
    of the result is empty and with ``"sample"`` it holds the recipients of every
    ``SAMPLE_EVERY``-th message: the summary and the hourly series are counted as the rows
    come to rest, and the rows freed (``Ledger.sink``).
    ``setup`` is called with the world once it is built, before it runs: to give servers
    policies of one's own (``netsim.mail.policy``), say. With ``recipients_file`` (at
    ``full``) every row is written there as it comes to rest, in row groups, and the
    result's table is empty: a run then holds its rows in flight only, whatever its size.
    A large run hands some work to a second thread (``netsim.world.helper``; by default
    where ``helper_pays``); ``threaded`` True or False says whether, with the same results.

    With a ``tracer`` the run stops as soon as the traced journey is over
    (:meth:`Tracer.over`), or at the scenario's end: the results then cover the simulated
    time only (``sim_seconds``), with the recipients still in flight pending."""
    if tracer is not None and scenario.fidelity == "flow":
        # a trace follows its messages through the engines (docs/fidelity.md)
        scenario = scenario.model_copy(update={"fidelity": "session"})
    started = time.perf_counter()
    large = helper_pays(estimate(scenario).recipients, scenario.duration_s)
    world = World(scenario, replication=replication, tracer=tracer,
                  helper=Helper(large if threaded is None else threaded))
    summary = report.Summary()
    rows: Sample | ParquetRows | None = None
    if records == "sample":
        rows = Sample()
    elif recipients_file is not None:
        if records != "full":
            raise ValueError("a file of every recipient is written at records full")
        rows = ParquetRows(recipients_file)
    streaming = records != "full" or rows is not None
    sinks = Sinks(summary, rows, world.helper)
    if streaming:   # rows are counted, and freed, as they come to rest
        world.ledger.sink = sinks
    # a large world just built lives as long as the run: the collector need not walk it at
    # each full collection (unless the caller froze objects of its own, which are left so).
    # What is garbage already is collected first: frozen, an earlier run's world would
    # outlive every run after it in the process.
    frozen = large and gc.get_freeze_count() == 0
    try:
        if setup is not None:
            setup(world)
        if frozen:
            gc.collect()
            gc.freeze()
        if tracer is None:
            world.env.run(until=scenario.duration_s)
        else:
            _run_journey(world, tracer)
        world.finish()
        world.ledger.check_conservation(world.held_rows())
        if streaming:
            world.ledger.retire(everything=True)
            sinks.wait()
    finally:   # the file is complete only if the run is: the caller keeps it or not
        if frozen:
            gc.unfreeze()
        world.helper.close()
        if isinstance(rows, ParquetRows):
            rows.close()
    wall = time.perf_counter() - started
    recipients = len(world.ledger)
    if streaming:
        table = rows.table() if isinstance(rows, Sample) else Ledger().to_arrow()
    else:
        table = world.ledger.to_arrow(release=True)
        summary = report.summarise(table)
    if summary.rows != recipients:
        raise ConservationError(f"the summary counted {summary.rows:,} recipient rows of "
                                f"{recipients:,}")
    results = {
        "netsim_version": netsim.__version__,
        "scenario": scenario.name,
        "seed": scenario.seed,
        "replication": replication,
        "params": scenario.model_dump(mode="json"),
        "counts": world.ledger.counts(),
        **summary.report(),
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
    return RunResult(scenario, results, table, summary.timeseries(), recipients_file)


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
