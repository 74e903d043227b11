"""A server's outbound queue: MX resolution, delivery attempts, retry with backoff, expiry.

Each queued (message, destination domain) pair is one SimPy process. Postfix-like schedule:
an attempt at once, then after ``backoff_min_s`` doubling up to ``backoff_max_s``; after a
failed attempt, a message older than the queue lifetime expires and bounces. A 5xx or
NXDOMAIN fails the recipients at once, with a bounce.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import simpy

from netsim.draws import attempt_key
from netsim.mail.defences import Listing
from netsim.mail.ledger import Ledger, Outcome
from netsim.mail.message import Mail, domain_of
from netsim.mail.outbox import attempt
from netsim.mail.policy import mechanism
from netsim.mail.routing import RouteStatus, resolve_mx
from netsim.mail.trace import Tracer, following
from netsim.net import Network, Resolver
from netsim.protocols import Reply


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    backoff_min_s: float
    backoff_max_s: float
    queue_lifetime_s: float

    def delay(self, failures: int) -> float:
        """Delay before the next attempt after ``failures`` failed attempts (1, 2, …)."""
        return float(min(self.backoff_min_s * 2 ** (failures - 1), self.backoff_max_s))

    def delays(self, failures: np.ndarray) -> np.ndarray:
        """:meth:`delay` for many entries at once (the same numbers: powers of two are
        exact)."""
        return np.minimum(self.backoff_min_s * 2.0 ** (failures - 1), self.backoff_max_s)

    def expired(self, queued_at: Any, now: Any) -> Any:
        """Whether an entry queued at ``queued_at`` that has just failed an attempt at
        ``now`` gives up (for one entry, or arrays of them): it has been queued for the
        queue's lifetime."""
        return now - queued_at >= self.queue_lifetime_s


# How the queue ends recipients without a delivery: the code and the mechanism.
NXDOMAIN = (550, "nxdomain")          # the domain does not exist: at once
EXPIRED = (0, "queue_lifetime")       # still undelivered after the queue's lifetime


class QueueEntry:
    """Recipients of one message for one destination domain, still in this server's care."""

    __slots__ = ("attempts", "domain", "mail", "pending", "queued_at")

    def __init__(self, mail: Mail, domain: str, recipients: list[str], at: float):
        self.mail = mail
        self.domain = domain
        self.pending = {a: mail.rows[a] for a in recipients}
        self.queued_at = at
        self.attempts = 0


class QueueServer(Protocol):
    """What an outbound queue uses of the server it belongs to (``MailServer`` is one).

    Attributes:
        env: The simulation's environment.
        network: The world's network, to connect to MX hosts through.
        address: The server's address, the source of its connections.
        hostname: Its name, for HELO and the trace.
        tracer: The trace of followed messages, if any.
        isp: Its origin (an ISP's name, or a hosting network's): what mail it sends out of.
        ledger: Where its sessions mark recipients sent out of their origin's networks.
    """

    @property
    def env(self) -> simpy.Environment: ...

    @property
    def network(self) -> Network: ...

    @property
    def address(self) -> int: ...

    @property
    def hostname(self) -> str: ...

    @property
    def tracer(self) -> Tracer | None: ...

    @property
    def isp(self) -> str: ...

    @property
    def ledger(self) -> Ledger: ...

    def fail(self, mail: Mail, rows: dict[str, int], outcome: Outcome, at: float, *,
             code: int, stopped_by: str) -> None:
        """Final failure of recipients the queue gives up; the server bounces the mail."""


class OutboundQueue:
    """The deferred and active queue of one MailServer. A blocklist (``listing``) sees the
    sessions it opens."""

    listing: Listing | None = None

    def __init__(self, server: QueueServer, resolver: Resolver, retry: RetryPolicy,
                 rng: np.random.Generator):
        self.server = server
        self.env: simpy.Environment = server.env
        self.resolver = resolver
        self.retry = retry
        self.rng = rng
        self.entries: set[QueueEntry] = set()

    def enqueue(self, mail: Mail, recipients: list[str], at: float) -> None:
        by_domain: dict[str, list[str]] = {}
        for address in recipients:
            by_domain.setdefault(domain_of(address), []).append(address)
        for domain, addresses in by_domain.items():
            entry = QueueEntry(mail, domain, addresses, at)
            self.entries.add(entry)
            self.env.process(self._deliver(entry, max(0.0, at - self.env.now)))

    def held_rows(self) -> set[int]:
        return {row for entry in self.entries for row in entry.pending.values()}

    def _deliver(self, entry: QueueEntry, start_in: float) -> Generator[simpy.Event, Any, None]:
        if start_in > 0:
            yield self.env.timeout(start_in)
        while entry.pending:
            entry.attempts += 1
            yield from self._attempt(entry)
            if not entry.pending:
                break
            if self.retry.expired(entry.queued_at, self.env.now):
                self._fail(entry, dict(entry.pending), Outcome.EXPIRED, self.env.now,
                           code=EXPIRED[0], cause=EXPIRED[1])
                break
            yield self.env.timeout(self.retry.delay(entry.attempts))
        self.entries.discard(entry)

    def _attempt(self, entry: QueueEntry) -> Generator[simpy.Event, Any, None]:
        """One delivery attempt: resolve, try the MX addresses in order, run SMTP."""
        server, mail, env = self.server, entry.mail, self.env
        trace = following(server.tracer, mail)
        route = yield from resolve_mx(env, self.resolver, entry.domain, self.rng, trace,
                                      server.hostname, attempt_key(mail.key, entry.attempts),
                                      server.address)
        if route.status is RouteStatus.NXDOMAIN:
            self._fail(entry, dict(entry.pending), Outcome.REJECTED, env.now,
                       code=NXDOMAIN[0], cause=NXDOMAIN[1])
            return
        for address in route.addresses:
            conn, refused = yield from attempt(
                env, server.network, server.ledger, server.address, address, 25, mail,
                entry.pending, client_origin=server.isp, helo=server.hostname, trace=trace,
                listing=self.listing)
            if not conn.is_open:
                continue   # try the next MX address; all failing is a temporary failure
            failed: dict[Reply, dict[str, int]] = {}
            for rcpt, reply in refused.items():
                if reply.is_permanent:
                    failed.setdefault(reply, {})[rcpt] = entry.pending[rcpt]
            for reply, rows in failed.items():
                self._fail(entry, rows, Outcome.REJECTED, env.now, code=reply.code,
                           cause=mechanism(reply))
            return

    def _fail(self, entry: QueueEntry, rows: dict[str, int], outcome: Outcome, at: float, *,
              code: int, cause: str) -> None:
        for address in rows:
            del entry.pending[address]
        self.server.fail(entry.mail, rows, outcome, at, code=code, stopped_by=cause)
