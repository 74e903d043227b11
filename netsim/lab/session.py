"""One connection to the lab: the world's filters, the session cap, then the engines.

A connection's bytes go through the byte layer of its engine (SMTP, POP3 or IMAP; see
:mod:`netsim.lab.engines`), whose hooks are the world's own (:mod:`netsim.lab.hooks`). This
module only moves bytes and enforces what a real server does:

- a client's loopback address is mapped back into the scenario and the world's filters decide
  (``world.network.connect``): a dropped SYN (OP25B's default) becomes a connection that is
  accepted but never greeted, held silently for the scenario's connect timeout and then reset;
  a rejected one, or a port the ISP does not offer, is reset at once;
- at most ``session_slots`` SMTP sessions a server, and as many mail-reading ones (POP3 and
  IMAP together); one more is told ``421 4.3.2``, ``-ERR [SYS/TEMP]`` or ``* BYE`` and closed;
- idle timeouts (SMTP: ``421`` then close, RFC 5321 §4.5.3.2.7; POP3 and IMAP: closed
  without a word, and without UPDATE for POP3, RFC 1939 §3);
- line limits and the budget of bad commands live in the wire layer and the engines;
- mail delivered to a mailbox an IMAP session has selected is told to it (``* n EXISTS``:
  at once while it idles, RFC 2177);
- an exception in one connection is logged and closes that connection only.

With ``--pcap`` each connection's octets are recorded as they are read and written
(:mod:`netsim.lab.capture`).

Timeouts use ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11, ``wait_for``
swallows a cancellation that arrives as its inner task completes, and a session would then
outlive the lab's stop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections import Counter
from contextlib import suppress

from netsim.lab.addresses import text
from netsim.lab.capture import Flow, LabCapture
from netsim.lab.engines import Engines, Served, busy, too_many_from_address
from netsim.lab.layout import LabClock, LabLayout, Service
from netsim.lab.settings import LabSettings
from netsim.lab.store import Postmaster
from netsim.lab.tls import LabTLS
from netsim.net import Verdict
from netsim.protocols import encode_reply
from netsim.protocols.replies import S421_SHUTTING_DOWN, S421_TIMEOUT

__all__ = ["Sessions"]

log = logging.getLogger("netsim.lab")

MAX_HELD = 256  # filtered connections held open at once; more are reset at once
READ_SIZE = 65536


class Sessions:
    """Every connection of a lab's servers; :meth:`handle` is the listeners' callback.

    Args:
        layout: The lab's servers and addresses.
        postmaster: Where accepted mail goes.
        clock: The scenario clock the filters are asked at.
        settings: Timeouts, limits and deadlines (:class:`~netsim.lab.settings.LabSettings`).
        drop_hold_s: How long a dropped connection is held unanswered [s].
        tls: The lab's TLS (STARTTLS, STLS and implicit TLS), or None.
        capture: Where connections are recorded (``--pcap``), or None.
    """

    def __init__(self, layout: LabLayout, postmaster: Postmaster, clock: LabClock,
                 settings: LabSettings, *, drop_hold_s: float,
                 tls: LabTLS | None = None, capture: LabCapture | None = None) -> None:
        self.layout = layout
        self.world = layout.world
        self.postmaster = postmaster
        self.clock = clock
        self.settings = settings
        self.drop_hold_s = drop_hold_s
        self.tls = tls
        self.capture = capture
        self.engines = Engines(layout, postmaster, settings, tls=tls is not None)
        self._tasks: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        # sessions open by (server, reading mail?) and by (server, reading mail?, address)
        self._active: Counter[tuple[object, ...]] = Counter()
        self._held = 0
        # IMAP sessions by server, each with its writer and flow: told of new mail
        self._imap: dict[int, dict[Served, tuple[asyncio.StreamWriter, Flow]]] = {}
        postmaster.listeners.append(self._delivered)

    async def close(self) -> None:
        """End every session: SMTP clients are told 421; a session deaf to cancellation is
        cut off."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        for writer in self._tasks.values():
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)

    async def handle(self, service: Service, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        """Serve one connection to ``service`` (the callback of ``asyncio.start_server``)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks[task] = writer
        peer = writer.get_extra_info("peername")
        peer_host = str(peer[0]) if peer else "?"
        try:
            await self._admit(service, peer_host, reader, writer)
        except asyncio.CancelledError:
            pass  # the lab stops; ending quietly spares asyncio a noisy callback error
        except (ConnectionError, TimeoutError) as exc:   # the peer's doing, not a bug
            log.warning("%s ← %s: connection lost (%s)", self._label(service), peer_host,
                        exc.strerror if isinstance(exc, OSError) and exc.strerror else
                        "no progress in time" if isinstance(exc, TimeoutError) else
                        type(exc).__name__)
        except Exception:  # bad input never stops the server: this connection only
            log.exception("%s: session with %s failed", self._label(service), peer_host)
        finally:
            if task is not None:
                self._tasks.pop(task, None)
            if not writer.is_closing():
                writer.close()

    def _label(self, service: Service) -> str:
        return f"{self.layout.servers[service.server].hostname}:{service.standard_port}"

    def _who(self, peer_host: str, client: int | None) -> str:
        if client is None:
            return f"{peer_host} (outside the scenario)"
        subnet = self.world.plan.subnet_of(client)
        return f"{peer_host} ({text(client)}, {subnet.name})"

    async def _admit(self, service: Service, peer_host: str, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        """The world's filters, then the session cap, then the session."""
        server = self.layout.servers[service.server]
        client = self.layout.addresses.client_address(peer_host)
        label, who = self._label(service), self._who(peer_host, client)
        network = self.world.network
        if client is None:
            opened = network.listener(server.address, service.scenario_port,
                                      self.clock.now) is not None
            verdict, why = (Verdict.OPEN if opened else Verdict.REFUSED), ""
        else:
            conn = network.connect(client, server.address, service.scenario_port,
                                   self.clock.now)
            verdict = conn.verdict
            why = f" by {conn.rule.name} ({conn.where})" if conn.rule is not None else ""
        if verdict is Verdict.DROPPED:
            hold = self.drop_hold_s
            log.info("%s ← %s: dropped%s; no greeting, reset after %g s", label, who, why,
                     hold)
            since = self.capture.now() if self.capture is not None else 0.0
            try:
                await self._hold(reader, hold)
            finally:
                if self.capture is not None:   # the SYNs for as long as the client waited
                    self.capture.filtered(service, peer_host, client, verdict, since)
            _reset(writer)  # the client gives up, as its connect() would time out
            return
        if verdict is not Verdict.OPEN:
            log.info("%s ← %s: %s%s; connection reset", label, who, verdict, why)
            if self.capture is not None:
                self.capture.filtered(service, peer_host, client, verdict,
                                      self.capture.now())
            _reset(writer)
            return
        flow = Flow() if self.capture is None else self.capture.flow(service, peer_host,
                                                                     client)
        try:
            await self._open(service, client, peer_host, reader, writer, flow)
        finally:
            flow.closed()

    async def _open(self, service: Service, client: int | None, peer_host: str,
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    flow: Flow) -> None:
        """The session cap, then the session."""
        server = self.layout.servers[service.server]
        label, who = self._label(service), self._who(peer_host, client)
        # SMTP and mail reading (POP3, IMAP) have a pool of slots each, and one address may
        # hold at most a share of a pool (Postfix smtpd_client_connection_count_limit), so a
        # flood from one address neither locks out the ISP's other users nor stops their
        # mail reading
        slots = server.settings.session_slots
        pool = (service.server, service.is_retrieval)
        mine = (*pool, peer_host)
        per_address = self.settings.per_address_sessions or max(1, slots // 2)
        if self._active[pool] >= slots:
            log.warning("%s ← %s: all %d session slots busy; refused", label, who, slots)
            await self._write(writer, flow, busy(service, server.hostname), 5.0)
            return
        if self._active[mine] >= per_address:
            log.warning("%s ← %s: %d sessions from this address already; refused", label,
                        who, per_address)
            await self._write(writer, flow, too_many_from_address(service), 5.0)
            return
        self._active[pool] += 1
        self._active[mine] += 1
        log.info("%s ← %s: session opened", label, who)
        served = self.engines.serve(service, peer_host if client is None else client,
                                    peer_host)
        if served.imap is not None:
            self._imap.setdefault(service.server, {})[served] = (writer, flow)
        try:
            ended = await self._converse(served, server.hostname, reader, writer, flow)
        finally:
            self._active[pool] -= 1
            self._active[mine] -= 1
            if not self._active[mine]:
                del self._active[mine]
            self._imap.get(service.server, {}).pop(served, None)
            served.end()
        log.info("%s ← %s: session ended (%s)", label, who, ended)

    async def _converse(self, served: Served, hostname: str, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter, flow: Flow) -> str:
        """Bytes between the socket and the wire server until either side ends."""
        wire, idle = served.wire, served.idle_s
        loop = asyncio.get_running_loop()
        ends = loop.time() + self.settings.session_deadline_s
        record: float | None = None   # the deadline of a partly received line or message
        try:
            await self._write(writer, flow, wire.greeting(), idle)
            while not wire.closed:
                if served.held:   # news that came while a reply was on its way
                    held, served.held = served.held, b""
                    await self._write(writer, flow, held, idle)
                # the idle timer, or a record's deadline, which bytes trickling in extend
                # only at min_data_rate (Postfix smtpd_per_record_deadline and
                # smtpd_min_data_rate), and never past the session's deadline
                now = loop.time()
                wait = min(idle if record is None else record - now, ends - now)
                try:
                    served.resting = True
                    async with asyncio.timeout(max(wait, 0.0)):
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    if served.is_smtp:   # POP3's and IMAP's autologout closes silently
                        await self._write(writer, flow, encode_reply(S421_TIMEOUT.with_text(
                            f"{hostname} Error: timeout exceeded")), 5.0)
                    return ("session deadline" if loop.time() >= ends else
                            f"idle for {idle:g} s" if record is None else "too slow")
                finally:
                    served.resting = False
                if not data:
                    return "client disconnected"
                flow.received(data)
                if record is None:
                    record = loop.time() + idle
                record += len(data) / self.settings.min_data_rate
                failed = wire.engine.failed_logins
                out = wire.receive_data(data)
                if not wire.in_record:
                    record = None
                if wire.engine.failed_logins > failed:
                    await asyncio.sleep(self.settings.auth_failure_delay_s)   # guessing costs time
                if out:
                    await self._write(writer, flow, out, idle)
                if wire.tls_pending and self.tls is not None:   # after STARTTLS's go-ahead
                    flow.encrypted()
                    await writer.start_tls(self.tls.server_context)
                    wire.tls_started()
            return "closed by the server"
        except asyncio.CancelledError:
            if served.is_smtp and not wire.closed:  # the lab stops
                self._send(writer, flow, encode_reply(S421_SHUTTING_DOWN))
            raise

    def _delivered(self, server: int, user: int) -> None:
        """Mail reached a maildrop: IMAP sessions with it selected are told (the postmaster
        calls this from whichever session delivered)."""
        for served, (writer, flow) in list(self._imap.get(server, {}).items()):
            try:
                news = served.news(user)
            except Exception:   # a bug, but the delivery that called it has happened
                log.exception("%s: telling an IMAP session of new mail failed",
                              self.layout.servers[server].hostname)
                continue
            if not news:
                continue
            if served.resting:   # nothing of its own on the way: it goes now
                self._send(writer, flow, news)
            else:                # after the reply its session is writing
                served.held += news

    async def _hold(self, reader: asyncio.StreamReader, seconds: float) -> None:
        """Keep a filtered connection open and silent, like a SYN that got no answer."""
        if self._held >= MAX_HELD:
            return
        self._held += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            while (left := deadline - loop.time()) > 0:
                try:
                    async with asyncio.timeout(left):
                        if not await reader.read(READ_SIZE):
                            return
                except TimeoutError:
                    return
        finally:
            self._held -= 1

    @staticmethod
    def _send(writer: asyncio.StreamWriter, flow: Flow, data: bytes) -> None:
        flow.sent(data)
        writer.write(data)

    async def _write(self, writer: asyncio.StreamWriter, flow: Flow, data: bytes,
                     timeout: float) -> None:
        self._send(writer, flow, data)
        async with asyncio.timeout(timeout):
            await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a host does for a closed port or a REJECT rule."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
