"""What the flow path holds, and how it ends recipients: a minute's work filed for later,
rows held past the run's end, final outcomes, deliveries into maildrops."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from netsim.mail.ledger import Ledger, Outcome
from netsim.world.columns import Columns

STEP_S = 60.0   # the flow path decides a minute of simulated time at a time


class Deliveries(Protocol):
    """Where deliveries go to be retrieved (``netsim.world.retrieval.Retrievals``)."""

    def add_many(self, isp: np.ndarray, users: np.ndarray, rows: np.ndarray, at: np.ndarray,
                 size: np.ndarray) -> None: ...

    def due(self, now: float) -> None:
        """Retrieve what every check begun before ``now`` collected."""

    def collect(self) -> None:
        """Record the retrievals ``due`` timed."""


class Custody:
    """The flow path's custody of recipients until their outcomes are final: a step after
    the run's end leaves its rows pending here, where the conservation check finds them."""

    def __init__(self, ledger: Ledger, deliveries: Deliveries, end: float):
        self.ledger = ledger
        self.deliveries = deliveries
        self.end = end
        self.held: list[np.ndarray] = []

    def held_rows(self) -> list[np.ndarray]:
        return self.held

    def later(self, due: dict[int, list[Columns]], work: Columns, t: np.ndarray,
              earliest: int) -> None:
        """File work to be taken in the minute each row's ``t`` falls in (not before
        ``earliest``); what starts after the run's end stays pending."""
        late = t >= self.end
        if late.any():
            self.hold(work.row[late])
            work, t = work.take(~late), t[~late]
        step = np.maximum((t // STEP_S).astype(np.int64), earliest)
        steps = np.unique(step).tolist()
        if len(steps) == 1:   # the usual: all in one minute, filed as they are
            due.setdefault(steps[0], []).append(work)
            return
        for k in steps:
            due.setdefault(k, []).append(work.take(step == k))

    def hold(self, rows: np.ndarray) -> None:
        if len(rows):
            self.held.append(rows)

    def finish(self, rows: np.ndarray, outcome: Outcome, at: np.ndarray, *,
               code: np.ndarray | int = 0, cause: np.ndarray | int = 0) -> None:
        """Final outcomes of steps that end before the run does; the rest stay pending."""
        done = at < self.end
        self.ledger.finish_rows(rows[done], outcome, at[done],
                                code=code[done] if isinstance(code, np.ndarray) else code,
                                stopped_by=cause[done] if isinstance(cause, np.ndarray)
                                else cause)
        self.hold(rows[~done])

    def deliver(self, work: Columns, at: np.ndarray, junk: np.ndarray) -> None:
        """Delivery at the recipient's server: the maildrop, or the junk folder."""
        self.ledger.finish_rows(work.row[junk], Outcome.JUNKED, at[junk])
        inbox = ~junk
        self.ledger.finish_rows(work.row[inbox], Outcome.DELIVERED, at[inbox])
        self.deliveries.add_many(work.rcpt_isp[inbox], work.rcpt_user[inbox],
                                 work.row[inbox], at[inbox], work.size[inbox])
