"""A server's outbound queue: MX resolution, delivery attempts, retry with backoff, expiry.

Each queued (message, destination domain) pair is one SimPy process. Postfix-like schedule:
an attempt at once, then after ``backoff_min_s`` doubling up to ``backoff_max_s``; after a
failed attempt, a message older than the queue lifetime expires and bounces. A 5xx or
NXDOMAIN fails the recipients at once, with a bounce.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import simpy

from netsim.mail.ledger import Outcome
from netsim.mail.message import Mail, domain_of
from netsim.mail.policy import mechanism
from netsim.mail.session import smtp_session
from netsim.net import Answer, RCode, Resolver
from netsim.protocols import Reply, SMTPClient

if TYPE_CHECKING:
    from netsim.mail.server import MailServer

MX_ADDRESSES_TRIED = 2   # RFC 5321 §5.1: try at least two addresses


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    backoff_min_s: float
    backoff_max_s: float
    queue_lifetime_s: float

    def delay(self, failures: int) -> float:
        """Delay before the next attempt after ``failures`` failed attempts (1, 2, …)."""
        return float(min(self.backoff_min_s * 2 ** (failures - 1), self.backoff_max_s))


class QueueEntry:
    """Recipients of one message for one destination domain, still in this server's care."""

    __slots__ = ("attempts", "domain", "mail", "pending", "queued_at")

    def __init__(self, mail: Mail, domain: str, recipients: list[str], at: float):
        self.mail = mail
        self.domain = domain
        self.pending = {a: mail.rows[a] for a in recipients}
        self.queued_at = at
        self.attempts = 0


class OutboundQueue:
    """The deferred and active queue of one MailServer."""

    def __init__(self, server: MailServer, resolver: Resolver, retry: RetryPolicy):
        self.server = server
        self.env: simpy.Environment = server.env
        self.resolver = resolver
        self.retry = retry
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
            if self.env.now - entry.queued_at >= self.retry.queue_lifetime_s:
                self._finish(entry, entry.pending, Outcome.EXPIRED, code=0,
                             stopped_by="queue_lifetime")
                break
            yield self.env.timeout(self.retry.delay(entry.attempts))
        self.entries.discard(entry)

    def _attempt(self, entry: QueueEntry) -> Generator[simpy.Event, Any, None]:
        """One delivery attempt: resolve, connect to MX hosts in order, run SMTP."""
        server, mail = self.server, entry.mail
        trace = server.tracer if server.tracer is not None and server.tracer.wants(mail) else None
        mx = yield from self._query(entry.domain, "MX", trace)
        if mx.rcode is RCode.NXDOMAIN:
            self._finish(entry, entry.pending, Outcome.REJECTED, code=550, stopped_by="nxdomain")
            return
        if mx.rcode is RCode.SERVFAIL:
            return
        # No MX records: the domain itself is the implicit MX (RFC 5321 §5.1).
        hosts = [r.exchange for r in mx.records] if mx.records else [entry.domain]  # type: ignore[union-attr]
        tried = 0
        for host in hosts:
            a = yield from self._query(host, "A", trace)
            for address in a.records if a.rcode is RCode.NOERROR else ():
                if tried == MX_ADDRESSES_TRIED:
                    return
                tried += 1
                conn = server.network.connect(server.address, address, 25,  # type: ignore[arg-type]
                                              self.env.now)
                if trace is not None:
                    trace.log(self.env.now, "connect", conn.describe())
                yield self.env.timeout(conn.delay_s)
                if not conn.is_open:
                    continue
                client = SMTPClient(server.hostname, mail.mail_from, list(entry.pending),
                                    size=mail.size, payload=mail)
                yield from smtp_session(
                    self.env, conn, client, trace=trace, text_lines=mail.text_lines,
                    on_settled=lambda c, at: self._settle(entry, c, at))
                return

    def _query(self, name: str, rtype: str, trace: Any) -> Generator[simpy.Event, Any, Answer]:
        answer, latency = self.resolver.query(name, rtype, self.env.now)
        yield self.env.timeout(latency)
        if trace is not None:
            trace.log(self.env.now, "dns", f"{self.server.hostname} resolver: "
                      f"{answer.describe()}")
        return answer

    def _settle(self, entry: QueueEntry, client: SMTPClient, at: float) -> None:
        """Apply per-recipient replies: 2xx leaves our custody, 5xx fails, 4xx stays queued."""
        failed: dict[Reply, dict[str, int]] = {}
        for address, reply in client.rcpt_replies.items():
            if reply.code < 400:
                del entry.pending[address]
            elif reply.code >= 500:
                failed.setdefault(reply, {})[address] = entry.pending.pop(address)
        for reply, rows in failed.items():
            self.server.fail(entry.mail, rows, Outcome.REJECTED, at, code=reply.code,
                             stopped_by=mechanism(reply))

    def _finish(self, entry: QueueEntry, rows: dict[str, int], outcome: Outcome, *, code: int,
                stopped_by: str) -> None:
        done = dict(rows)
        rows.clear()
        self.server.fail(entry.mail, done, outcome, self.env.now, code=code,
                         stopped_by=stopped_by)

