"""One run: build the world, simulate, check conservation, summarise."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

import netsim
from netsim.mail import Ledger, Tracer
from netsim.mail.ledger import ConservationError, Sink, table_of
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
    of the result is empty and with ``"sample"`` it holds the recipients of every
    ``SAMPLE_EVERY``-th message: the summary and the hourly series are counted as the rows
    come to rest, and the rows freed (``Ledger.sink``).
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
    summary = report.Summary()
    sample = Sample() if records == "sample" else None
    if records != "full":   # rows are counted, and freed, as they come to rest
        world.ledger.sink = _sink(summary, sample)
    if setup is not None:
        setup(world)
    if tracer is None:
        world.env.run(until=scenario.duration_s)
    else:
        _run_journey(world, tracer)
    world.finish()
    world.ledger.check_conservation(world.held_rows())
    wall = time.perf_counter() - started
    recipients = len(world.ledger)
    if records == "full":
        table = world.ledger.to_arrow(release=True)
        summary = report.summarise(table)
    else:
        world.ledger.retire(everything=True)
        table = sample.table() if sample is not None else Ledger().to_arrow()
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
    return RunResult(scenario, results, table, summary.timeseries())


def _sink(summary: report.Summary, sample: Sample | None) -> Sink:
    """What a streaming ledger hands its rows at rest to: the summary, and the sample."""
    def sink(rows: np.ndarray, columns: dict[str, np.ndarray],
             words: dict[str, list[str]]) -> None:
        summary.add(report.ArrayColumns(columns, words))
        if sample is not None:
            sample.add(rows, columns, words)
    return sink


SAMPLE_EVERY = 100   # ``sample`` keeps the recipients of every 100th message


def sampled_ids(message_id: np.ndarray, every: int = SAMPLE_EVERY) -> np.ndarray:
    """Which of these messages a sample keeps: every ``every``-th by id, whole messages."""
    return np.asarray(message_id) % every == 0


class Sample:
    """The rows of every ``SAMPLE_EVERY``-th message, kept as the ledger hands them on and
    put back in row order at the end."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.parts: list[dict[str, np.ndarray]] = []
        self.words: dict[str, list[str]] = {}

    def add(self, rows: np.ndarray, columns: dict[str, np.ndarray],
            words: dict[str, list[str]]) -> None:
        kept = sampled_ids(columns["message_id"])
        self.rows.append(rows[kept])
        self.parts.append({name: values[kept] for name, values in columns.items()})
        self.words = words   # a vocabulary only grows: the last words code every row

    def table(self) -> pa.Table:
        if not self.parts:
            return Ledger().to_arrow()
        order = np.argsort(np.concatenate(self.rows), kind="stable")
        joined = {name: np.concatenate([p[name] for p in self.parts])[order]
                  for name in self.parts[0]}
        return table_of(Ledger().columns, joined.__getitem__, self.words)


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
