"""The lab's outbound queue: mail for other domains goes over real SMTP connections.

For each destination domain the relaying server looks up the MX records in the world's DNS
data (``world.zones``; a domain with no MX but an A record is its own exchanger, RFC 5321
§5.1), connects from its own loopback address to the exchanger's port 25 and drives the
sans-I/O :class:`~netsim.protocols.SMTPClient` over the socket. The receiving server treats
it like any client: its filters and policies apply to the relaying server's address.

A 4xx reply, a refused or lost connection, or no answer in time leaves the recipients queued;
they are retried after ``retry_min_s``, doubling up to ``retry_max_s`` (shorter than
Postfix's 300-4000 s, so a demonstration does not stall), until ``lifetime_s`` has passed.
A 5xx, an unknown domain, a mail loop or the end of the lifetime bounces to the sender.
The queue lives in memory, and with a spool (``netsim.lab.spool``) on disk too: without one,
mail still queued when the lab stops is lost (and counted); with one, a restarted lab
resumes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from netsim.lab.addresses import text
from netsim.lab.dialogue import run_smtp_client
from netsim.lab.layout import LabLayout
from netsim.lab.spool import Spool
from netsim.lab.store import Postmaster
from netsim.mail import domain_of
from netsim.protocols import SMTPClient, encode_command

__all__ = ["Outgoing", "Relay", "RelaySettings"]

log = logging.getLogger("netsim.lab")

Endpoint = Callable[[int], "tuple[str, int] | None"]
"""The lab host and port of the SMTP service at a scenario address (None: nothing there)."""


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """Retry schedule and timeouts of the relay [s], and how many connections a server
    opens at once to one exchanger (Postfix default_destination_concurrency_limit, 20):
    a burst of mail for one domain waits its turn instead of filling the receiving
    server's session slots (and getting 421s). A connection whose message went through is
    kept ``connection_cache_s`` for the next message to the same exchanger (Postfix
    smtp_connection_cache_time_limit, 2 s), then closed with QUIT."""

    retry_min_s: float = 10.0
    retry_max_s: float = 300.0
    lifetime_s: float = 432_000.0
    timeout_s: float = 30.0
    destination_concurrency: int = 20
    connection_cache_s: float = 2.0


@dataclass(slots=True, eq=False)
class Connection:
    """An open connection to an exchanger: its streams, and its SMTP client once greeted."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    client: SMTPClient | None = None
    expiry: asyncio.TimerHandle | None = None

    def close(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        if self.client is not None and self.client.idle:
            self.writer.write(encode_command(self.client.close()))   # QUIT, unanswered
        self.writer.close()


@dataclass(slots=True)
class Outgoing:
    """Recipients of one domain still to deliver, with the message."""

    server: int
    mail_from: str
    domain: str
    pending: list[str]
    payload: bytes
    queued_at: float = field(default_factory=time.monotonic)
    attempts: int = 0
    key: str = ""   # its name in the spool

    def entry(self) -> dict[str, object]:
        """What the spool keeps of it besides the message."""
        return {"server": self.server, "mail_from": self.mail_from, "domain": self.domain,
                "pending": self.pending, "attempts": self.attempts}


class Relay:
    """Delivers queued mail, one asyncio task per message and destination domain.

    Args:
        layout: The lab's servers and addresses.
        endpoint: Finds the lab's SMTP listener of a scenario address.
        settings: Retry schedule and timeouts.
    """

    def __init__(self, layout: LabLayout, endpoint: Endpoint,
                 settings: RelaySettings | None = None, spool: Spool | None = None) -> None:
        self.layout = layout
        self.endpoint = endpoint
        self.settings = settings or RelaySettings()
        self.spool = spool
        self.postmaster: Postmaster | None = None
        self.delivered = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._queued: set[int] = set()  # ids of Outgoing not yet finished
        # messages in flight from a server to an exchanger's address, at most
        # destination_concurrency at once; a new connection is opened only when none is
        # idle in the cache, so no more connections than that are ever open
        self._in_flight: dict[tuple[int, int], asyncio.Semaphore] = {}
        self._idle: dict[tuple[int, int], list[Connection]] = {}

    def attach(self, postmaster: Postmaster) -> None:
        """Give the relay the postmaster it bounces through."""
        self.postmaster = postmaster

    @property
    def queued(self) -> int:
        """Destination groups (message × domain) not yet delivered or bounced."""
        return len(self._queued)

    def enqueue(self, server: int, mail_from: str, rcpt_to: list[str], payload: bytes,
                uid: str = "") -> None:
        """Queue recipients of other domains (on disk first, with a spool); delivery
        starts at once, in the background."""
        groups: dict[str, list[str]] = {}
        for rcpt in rcpt_to:
            groups.setdefault(domain_of(rcpt).lower(), []).append(rcpt)
        for domain, rcpts in groups.items():
            item = Outgoing(server, mail_from, domain, rcpts, payload, key=f"{uid}.{domain}")
            if self.spool is not None:
                self.spool.enqueue(item.key, item.entry(), payload)
            self._start(item)

    def resume(self) -> int:
        """Start again what the spool still holds (a restarted lab); returns how many."""
        if self.spool is None:
            return 0
        count = 0
        for key, entry, payload in self.spool.queued():
            self._start(Outgoing(int(entry["server"]), str(entry["mail_from"]),
                                 str(entry["domain"]), list(entry["pending"]), payload,
                                 attempts=int(entry["attempts"]), key=key))
            count += 1
        return count

    def _start(self, item: Outgoing) -> None:
        self._queued.add(id(item))
        task = asyncio.get_running_loop().create_task(self._run(item))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> int:
        """Stop every delivery in progress; returns how many groups were still queued."""
        left = self.queued
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for cached in self._idle.values():
            for connection in cached:
                connection.close()
        self._idle.clear()
        return left

    async def _run(self, item: Outgoing) -> None:
        s = self.settings
        delay = s.retry_min_s
        try:
            while True:
                failures = await self._attempt(item)
                if failures:
                    self._bounce(item, failures)
                if not item.pending:
                    if self.spool is not None:
                        self.spool.dequeue(item.key)
                    return
                if self.spool is not None:   # only what no server has taken yet
                    self.spool.update(item.key, item.entry())
                if time.monotonic() - item.queued_at + delay > s.lifetime_s:
                    self._bounce(item, {r: "4.4.7 message expired in the queue"
                                        for r in item.pending})
                    if self.spool is not None:
                        self.spool.dequeue(item.key)
                    return
                log.info("relay %s → %s: %s deferred, retry in %g s", self._name(item),
                         item.domain, ", ".join(item.pending), delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, s.retry_max_s)
        except Exception:  # a bug must not end the lab: log it, keep the rest going
            log.exception("relay %s → %s failed", self._name(item), item.domain)
        finally:
            self._queued.discard(id(item))

    def _name(self, item: Outgoing) -> str:
        return self.layout.servers[item.server].hostname

    def _routes(self, domain: str) -> list[tuple[str, int]] | str:
        """(exchanger, address) pairs in MX preference order, or why there are none."""
        zones = self.layout.world.zones
        records = zones.mx.get(domain)
        if records is None:
            if domain not in zones.a:
                return f"5.1.2 Host or domain name not found: {domain} (NXDOMAIN)"
            hosts = [domain]
        else:
            hosts = [r.exchange for r in records]
        routes = [(h, a) for h in hosts for a in zones.a.get(h, ())]
        return routes or f"5.4.4 No address for the mail exchangers of {domain}"

    async def _attempt(self, item: Outgoing) -> dict[str, str]:
        """One delivery attempt; returns permanent failures and leaves deferred ones pending."""
        item.attempts += 1
        own = self.layout.servers[item.server]
        routes = self._routes(item.domain)
        if isinstance(routes, str):
            return self._fail_all(item, routes)
        for exchanger, address in routes:
            if address == own.address:
                return self._fail_all(item, f"5.4.6 mail for {item.domain} loops back to "
                                            f"myself ({exchanger})")
            target = self.endpoint(address)
            log.info("relay %s: %s MX → %s → %s (lab %s)", own.hostname, item.domain,
                     exchanger, text(address), self.layout.addresses.lab_text(address))
            if target is None:
                log.info("relay %s: no lab server listens at %s (%s)", own.hostname,
                         self.layout.addresses.lab_text(address), exchanger)
                continue
            key = (item.server, address)
            async with self._in_flight.setdefault(
                    key, asyncio.Semaphore(self.settings.destination_concurrency)):
                cached = self._idle.get(key)
                connection = cached.pop() if cached else None
                if connection is not None and connection.expiry is not None:
                    connection.expiry.cancel()
                if connection is None:
                    try:
                        async with asyncio.timeout(self.settings.timeout_s):
                            reader, writer = await asyncio.open_connection(
                                *target, local_addr=(self.layout.hosts[item.server], 0))
                    except (OSError, TimeoutError) as exc:
                        log.info("relay %s → %s:%d: %s", own.hostname, target[0], target[1],
                                 exc.strerror if isinstance(exc, OSError) and exc.strerror
                                 else "timeout")
                        continue
                    connection = Connection(reader, writer)
                return await self._session(item, exchanger, key, connection)
        return {}

    def _keep(self, key: tuple[int, int], connection: Connection) -> None:
        """Cache an idle connection for the next message to its exchanger, for a while."""
        cached = self._idle.setdefault(key, [])
        cached.append(connection)

        def expire() -> None:
            if connection in cached:
                cached.remove(connection)
                connection.close()

        connection.expiry = asyncio.get_running_loop().call_later(
            self.settings.connection_cache_s, expire)

    async def _session(self, item: Outgoing, exchanger: str, key: tuple[int, int],
                       connection: Connection) -> dict[str, str]:
        """One message over ``connection`` (new, or kept from the last message)."""
        own = self.layout.servers[item.server]
        first = None
        if connection.client is None:
            client = connection.client = SMTPClient(
                own.hostname, item.mail_from, item.pending, size=len(item.payload),
                payload=item.payload, keep_open=True)
        else:
            client = connection.client
            first = client.next_message(item.mail_from, item.pending, size=len(item.payload),
                                        payload=item.payload)

        def echo(direction: str, line: str) -> None:
            log.info("relay %s → %s  %s: %s", own.hostname, exchanger, direction, line)

        try:
            await run_smtp_client(client, connection.reader, connection.writer,
                                  timeout=self.settings.timeout_s, echo=echo, first=first)
        finally:
            if client.idle:
                self._keep(key, connection)
            else:
                connection.close()
        failures: dict[str, str] = {}
        deferred: list[str] = []
        for rcpt in item.pending:
            reply = client.rcpt_replies.get(rcpt)
            if reply is None or reply.is_transient:
                deferred.append(rcpt)
            elif reply.is_permanent:
                failures[rcpt] = reply.wire_lines()[-1]
            else:
                self.delivered += 1
        item.pending = deferred
        return failures

    def _fail_all(self, item: Outgoing, reason: str) -> dict[str, str]:
        failures = dict.fromkeys(item.pending, reason)
        item.pending = []
        return failures

    def _bounce(self, item: Outgoing, failures: dict[str, str]) -> None:
        log.info("relay %s → %s: undeliverable: %s", self._name(item), item.domain,
                 "; ".join(f"{r}: {why}" for r, why in failures.items()))
        if self.postmaster is not None:
            self.postmaster.bounce(item.server, item.mail_from, failures, item.payload)
