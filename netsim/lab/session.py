"""One connection to the lab: the world's filters, the session cap, then the engines.

A connection's bytes go through :class:`~netsim.protocols.SMTPWireServer` /
:class:`~netsim.protocols.POP3WireServer` to the engines, whose hooks are the world's own (see
:mod:`netsim.lab.hooks`). This module only moves bytes and enforces what a real server does:

- a client's loopback address is mapped back into the scenario and the world's filters decide
  (``world.network.connect``): a dropped SYN (OP25B's default) becomes a connection that is
  accepted but never greeted, held silently for the scenario's connect timeout and then reset;
  a rejected one, or a port the ISP does not offer, is reset at once;
- at most ``session_slots`` sessions a server (SMTP and POP3 together, as in the
  simulation); one more is told ``421 4.3.2`` or ``-ERR [SYS/TEMP]`` and closed;
- idle timeouts (SMTP: ``421`` then close, RFC 5321 §4.5.3.2.7; POP3: closed without a word
  and without UPDATE, RFC 1939 §3);
- line limits and the budget of bad commands live in the wire layer and the engines;
- an exception in one connection is logged and closes that connection only.

Timeouts use ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11, ``wait_for``
swallows a cancellation that arrives as its inner task completes, and a session would then
outlive the lab's stop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections import Counter
from contextlib import suppress

from netsim.lab.addresses import text
from netsim.lab.hooks import LabPOP3Hooks, LabSMTPHooks
from netsim.lab.layout import LabClock, LabLayout, Service
from netsim.lab.settings import LabSettings
from netsim.lab.store import Postmaster
from netsim.lab.tls import LabTLS
from netsim.net import Verdict
from netsim.protocols import (
    POP3WireServer,
    SMTPWireServer,
    encode_pop3_reply,
    encode_reply,
)
from netsim.protocols.pop3_replies import ERR_BUSY, ERR_TOO_MANY_FROM_ADDRESS
from netsim.protocols.replies import (
    S421_SHUTTING_DOWN,
    S421_TIMEOUT,
    S421_TOO_MANY_FROM_ADDRESS,
    S421_TOO_MANY_SESSIONS,
)

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
    """

    def __init__(self, layout: LabLayout, postmaster: Postmaster, clock: LabClock,
                 settings: LabSettings, *, drop_hold_s: float,
                 tls: LabTLS | None = None) -> None:
        self.layout = layout
        self.world = layout.world
        self.postmaster = postmaster
        self.clock = clock
        self.settings = settings
        self.drop_hold_s = drop_hold_s
        self.tls = tls
        self._tasks: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        # sessions open by (server, POP3?) and by (server, POP3?, client address)
        self._active: Counter[tuple[object, ...]] = Counter()
        self._held = 0

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
            await self._hold(reader, hold)
            _reset(writer)  # the client gives up, as its connect() would time out
            return
        if verdict is not Verdict.OPEN:
            log.info("%s ← %s: %s%s; connection reset", label, who, verdict, why)
            _reset(writer)
            return
        # SMTP and POP3 have a pool of slots each, and one address may hold at most a share
        # of a pool (Postfix smtpd_client_connection_count_limit), so a flood from one
        # address neither locks out the ISP's other users nor stops their mail reading
        slots = server.settings.session_slots
        pool = (service.server, service.is_pop3)
        mine = (*pool, peer_host)
        per_address = self.settings.per_address_sessions or max(1, slots // 2)
        if self._active[pool] >= slots:
            log.warning("%s ← %s: all %d session slots busy; refused", label, who, slots)
            busy = (encode_pop3_reply(ERR_BUSY) if service.is_pop3 else encode_reply(
                S421_TOO_MANY_SESSIONS.with_text(f"{server.hostname} too many sessions, "
                                                 "try again later")))
            await self._write(writer, busy, 5.0)
            return
        if self._active[mine] >= per_address:
            log.warning("%s ← %s: %d sessions from this address already; refused", label,
                        who, per_address)
            await self._write(writer, encode_pop3_reply(ERR_TOO_MANY_FROM_ADDRESS)
                              if service.is_pop3 else encode_reply(S421_TOO_MANY_FROM_ADDRESS),
                              5.0)
            return
        self._active[pool] += 1
        self._active[mine] += 1
        log.info("%s ← %s: session opened", label, who)
        try:
            ended = await self._converse(service, client, peer_host, reader, writer)
        finally:
            self._active[pool] -= 1
            self._active[mine] -= 1
            if not self._active[mine]:
                del self._active[mine]
        log.info("%s ← %s: session ended (%s)", label, who, ended)

    async def _converse(self, service: Service, client: int | None, peer_host: str,
                        reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        """Bytes between the socket and the wire server until either side ends."""
        server = self.layout.servers[service.server]
        address: object = peer_host if client is None else client
        pop3_hooks: LabPOP3Hooks | None = None
        wire: SMTPWireServer | POP3WireServer
        # with TLS: offered on the plain ports, from the first octet on 465 and 995, and
        # the scenario's security settings keep logins inside it
        tls = self.tls is not None
        security = self.world.scenario.isps[service.server].mail_server
        if service.is_pop3:
            pop3_hooks = LabPOP3Hooks(server, self.postmaster.spool)
            # the wall clock in the APOP timestamp keeps it unique across lab restarts
            engine_pop3, _ = server.pop3_engine(
                service.scenario_port, address, pop3_hooks, self.settings.max_errors,
                stamp=str(int(time.time())), stls=tls, tls=service.implicit_tls,
                allow_plaintext=not (tls and security.pop3_security in ("stls", "pop3s")))
            wire = POP3WireServer(engine_pop3)
            idle = self.settings.pop3_idle_s
        else:
            engine, _ = server.smtp_engine(
                service.scenario_port, address,
                LabSMTPHooks(server, service.server, self.postmaster), self.settings.max_errors,
                starttls=tls, tls=service.implicit_tls,
                auth_requires_tls=tls and security.submission_security == "tls")
            engine.session.extra["peer"] = peer_host
            wire = SMTPWireServer(engine)
            idle = self.settings.smtp_idle_s
        loop = asyncio.get_running_loop()
        ends = loop.time() + self.settings.session_deadline_s
        record: float | None = None   # the deadline of a partly received line or message
        try:
            await self._write(writer, wire.greeting(), idle)
            while not wire.closed:
                # the idle timer, or a record's deadline, which bytes trickling in extend
                # only at min_data_rate (Postfix smtpd_per_record_deadline and
                # smtpd_min_data_rate), and never past the session's deadline
                now = loop.time()
                wait = min(idle if record is None else record - now, ends - now)
                try:
                    async with asyncio.timeout(max(wait, 0.0)):
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    if not service.is_pop3:  # POP3's autologout timer closes silently
                        await self._write(writer, encode_reply(S421_TIMEOUT.with_text(
                            f"{server.hostname} Error: timeout exceeded")), 5.0)
                    return ("session deadline" if loop.time() >= ends else
                            f"idle for {idle:g} s" if record is None else "too slow")
                if not data:
                    return "client disconnected"
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
                    await self._write(writer, out, idle)
                if wire.tls_pending and self.tls is not None:   # after STARTTLS's 220 or STLS
                    await writer.start_tls(self.tls.server_context)
                    wire.tls_started()
            return "closed by the server"
        except asyncio.CancelledError:
            if not service.is_pop3 and not wire.closed:  # the lab stops
                writer.write(encode_reply(S421_SHUTTING_DOWN))
            raise
        finally:
            if pop3_hooks is not None:
                pop3_hooks.release()  # unlock without deleting, unless QUIT committed

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
    async def _write(writer: asyncio.StreamWriter, data: bytes, timeout: float) -> None:
        writer.write(data)
        async with asyncio.timeout(timeout):
            await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a host does for a closed port or a REJECT rule."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
