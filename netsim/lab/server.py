"""The live lab: each ISP's mail server of a scenario on real sockets (asyncio).

A second adapter around the same engines the simulation drives: a connection's bytes go
through :class:`~netsim.protocols.SMTPWireServer` / :class:`~netsim.protocols.POP3WireServer`
to the engines, whose hooks are the world's own (see :mod:`netsim.lab.hooks`). This module
only moves bytes, maps addresses, admits or refuses connections, and enforces the limits of
a real server:

- a client's loopback address is mapped back into the scenario; the world's filters decide
  (``world.network.connect``): a dropped SYN (OP25B's default) becomes a connection that is
  accepted but never greeted, held silently for the scenario's connect timeout and then
  closed; a rejected one, or a port the ISP does not offer, is reset at once;
- at most ``session_slots`` sessions a server (SMTP and POP3 together, as in the
  simulation); one more is told ``421 4.3.2`` or ``-ERR [SYS/TEMP]`` and closed;
- idle timeouts (SMTP 5 minutes, RFC 5321 §4.5.3.2.7: ``421`` then close; POP3 10 minutes,
  RFC 1939 §3: closed without a word and without UPDATE);
- line limits and the budget of bad commands live in the wire layer and the engines;
- an exception in one connection is logged and closes that connection only.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import time
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial

from netsim.errors import UserError
from netsim.lab.addresses import text
from netsim.lab.hooks import LabPOP3Hooks, LabSMTPHooks
from netsim.lab.layout import LabClock, LabLayout, PortMap, Service, lab_world
from netsim.lab.relay import Relay, RelaySettings
from netsim.lab.store import Postmaster
from netsim.net import Verdict
from netsim.protocols import (
    POP3Reply,
    POP3Server,
    POP3WireServer,
    SMTPServer,
    SMTPWireServer,
    encode_pop3_reply,
    encode_reply,
)
from netsim.protocols.replies import S421_SHUTTING_DOWN
from netsim.scenario import Scenario

__all__ = ["ERR_BUSY", "Lab", "LabSettings"]

log = logging.getLogger("netsim.lab")

#: POP3's answer to a session over the server's cap (RFC 2449 §8.1.2 response code).
ERR_BUSY = POP3Reply(False, "[SYS/TEMP] too many sessions, try again later")
MAX_HELD = 256  # filtered connections held open at once; more are reset
READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class LabSettings:
    """How the lab listens and how patient it is.

    Attributes:
        ports: Where the standard ports go (see :class:`~netsim.lab.layout.PortMap`).
        bind_all: Also listen on every interface (server k at port + 100·k).
        at: The scenario time at which the lab starts [s].
        smtp_idle_s: SMTP idle timeout [s].
        pop3_idle_s: POP3 idle timeout [s].
        max_errors: Bad commands a session may send before 421 / -ERR and close.
        drop_hold_s: How long a dropped connection is held unanswered [s]; ``None``: the
            scenario's ``smtp.connect_timeout_s``.
        relay: The relay's retry schedule and timeouts.
    """

    ports: PortMap = field(default_factory=PortMap)
    bind_all: bool = False
    at: float = 0.0
    smtp_idle_s: float = 300.0
    pop3_idle_s: float = 600.0
    max_errors: int = 10
    drop_hold_s: float | None = None
    relay: RelaySettings = field(default_factory=RelaySettings)


class Lab:
    """Every ISP's mail server of a scenario, listening on its own loopback address.

    Args:
        scenario: The scenario; its world is built, never run.
        settings: Ports, timeouts and limits.
    """

    def __init__(self, scenario: Scenario, settings: LabSettings | None = None) -> None:
        self.settings = settings or LabSettings()
        self.world = lab_world(scenario, self.settings.at)
        assert isinstance(self.world.env, LabClock)
        self.clock: LabClock = self.world.env
        self.layout = LabLayout(self.world, self.settings.ports)
        self.relay = Relay(self.layout, self._smtp_endpoint, self.settings.relay)
        self.postmaster = Postmaster(self.layout.servers, self.relay.enqueue)
        self.relay.attach(self.postmaster)
        #: (server index, service name) → (host, port) actually bound on loopback.
        self.bound: dict[tuple[int, str], tuple[str, int]] = {}
        #: The same on every interface, with ``bind_all``.
        self.exposed: dict[tuple[int, str], tuple[str, int]] = {}
        self._listeners: list[asyncio.Server] = []
        self._timers: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._active = [0] * len(self.layout.servers)
        self._held = 0
        self._pop3_sessions = 0

    # -- life cycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on every service; the scenario's clock starts now.

        Raises:
            UserError: If an address or port cannot be bound (nothing stays bound then).
        """
        self.clock.start()
        s = self.settings
        try:
            for i in range(len(self.layout.servers)):
                for service in self.layout.services(i):
                    port = s.ports.lab_port(service.standard_port)
                    self.bound[(i, service.name)] = await self._listen(
                        service, self.layout.hosts[i], port)
                    if s.bind_all:
                        port = s.ports.exposed_port(service.standard_port, i)
                        self.exposed[(i, service.name)] = await self._listen(
                            service, "0.0.0.0", port)
        except BaseException:
            await self.stop()
            raise
        self._open_submission_later()

    async def stop(self) -> int:
        """Stop listening, end every session (SMTP clients get 421) and the relay.

        Returns:
            Destination groups still queued in the relay, now lost.
        """
        for timer in self._timers:
            timer.cancel()
        for listener in self._listeners:
            listener.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for listener in self._listeners:
            with suppress(Exception):
                await asyncio.wait_for(listener.wait_closed(), 1.0)
        self._listeners.clear()
        return await self.relay.close()

    async def _listen(self, service: Service, host: str, port: int) -> tuple[str, int]:
        try:
            listener = await asyncio.start_server(partial(self._connection, service), host,
                                                  port, reuse_address=True)
        except OSError as exc:
            raise UserError(_bind_error(host, port, exc)) from None
        self._listeners.append(listener)
        name = listener.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    def _open_submission_later(self) -> None:
        """A submission port with a start time opens then (as ``_listen_from`` would in a
        simulation run: the world is never run here, so the lab keeps that appointment)."""
        loop = asyncio.get_running_loop()
        for i, isp in enumerate(self.world.scenario.isps):
            submission = isp.policies.submission
            if submission is None or submission.start_s <= 0:
                continue
            server = self.layout.servers[i]
            delay = submission.start_s - self.clock.now
            if delay <= 0:
                server.listen(587)
            else:
                self._timers.append(loop.call_later(delay, server.listen, 587))

    # -- where things are ----------------------------------------------------------------
    def endpoint(self, isp: str, service: str) -> tuple[str, int]:
        """The loopback host and port of a server's service (``smtp``, ``submission``,
        ``pop3``), by ISP name, domain or host name."""
        return self.bound[(self.layout.find_server(isp), service)]

    def mailbox(self, isp: str, user: int) -> list[bytes]:
        """The messages waiting for ``user<user>`` at an ISP (call from the lab's loop)."""
        return self.postmaster.mailbox(self.layout.find_server(isp), user)

    def _smtp_endpoint(self, address: int) -> tuple[str, int] | None:
        server = self.layout.server_at(address)
        return None if server is None else self.bound.get((server, "smtp"))

    # -- connections -----------------------------------------------------------------------
    async def _connection(self, service: Service, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        peer = writer.get_extra_info("peername")
        peer_host = str(peer[0]) if peer else "?"
        try:
            await self._admit(service, peer_host, reader, writer)
        except Exception:  # bad input never stops the server: this connection only
            log.exception("%s: session with %s failed", self._label(service), peer_host)
        finally:
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]
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
            opened = network.listener(server.address, service.scenario_port) is not None
            verdict, why = (Verdict.OPEN if opened else Verdict.REFUSED), ""
        else:
            conn = network.connect(client, server.address, service.scenario_port,
                                   self.clock.now)
            verdict = conn.verdict
            why = f" by {conn.rule.name} ({conn.where})" if conn.rule is not None else ""
        if verdict is Verdict.DROPPED:
            hold = self.settings.drop_hold_s
            hold = self.world.scenario.smtp.connect_timeout_s if hold is None else hold
            log.info("%s ← %s: dropped%s; no greeting, closed after %g s", label, who, why,
                     hold)
            await self._hold(reader, hold)
            return
        if verdict is not Verdict.OPEN:
            log.info("%s ← %s: %s%s; connection reset", label, who, verdict, why)
            _reset(writer)
            return
        i = service.server
        if self._active[i] >= server.settings.session_slots:
            log.warning("%s ← %s: all %d session slots busy; refused", label, who,
                        server.settings.session_slots)
            busy = (encode_pop3_reply(ERR_BUSY) if service.is_pop3 else encode_reply(
                S421_SHUTTING_DOWN.with_text(f"{server.hostname} too many sessions, "
                                             "try again later")))
            await self._write(writer, busy, 5.0)
            return
        self._active[i] += 1
        log.info("%s ← %s: session opened", label, who)
        try:
            ended = await self._converse(service, client, peer_host, reader, writer)
        finally:
            self._active[i] -= 1
        log.info("%s ← %s: session ended (%s)", label, who, ended)

    async def _converse(self, service: Service, client: int | None, peer_host: str,
                        reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        """Bytes between the socket and the wire server until either side ends."""
        server = self.layout.servers[service.server]
        address: object = peer_host if client is None else client
        s = self.settings
        pop3_hooks: LabPOP3Hooks | None = None
        wire: SMTPWireServer | POP3WireServer
        if service.is_pop3:
            self._pop3_sessions += 1
            pop3_hooks = LabPOP3Hooks(server)
            stamp = f"<{self._pop3_sessions}.{int(time.time())}@{server.hostname}>"
            wire = POP3WireServer(POP3Server(
                server.hostname, pop3_hooks, client_address=address,
                port=service.scenario_port, timestamp=stamp, max_errors=s.max_errors))
            idle = s.pop3_idle_s
        else:
            engine = SMTPServer(
                server.hostname, LabSMTPHooks(server, service.server, self.postmaster),
                client_address=address, port=service.scenario_port,
                auth_required=service.scenario_port == 587,
                max_recipients=server.settings.max_recipients,
                max_message_size=server.settings.message_size_limit, max_errors=s.max_errors)
            engine.session.extra["peer"] = peer_host
            wire = SMTPWireServer(engine)
            idle = s.smtp_idle_s
        try:
            await self._write(writer, wire.greeting(), idle)
            while not wire.closed:
                try:
                    data = await asyncio.wait_for(reader.read(READ_SIZE), idle)
                except TimeoutError:
                    if not service.is_pop3:  # POP3's autologout timer closes silently
                        await self._write(writer, encode_reply(S421_SHUTTING_DOWN.with_text(
                            f"{server.hostname} Error: timeout exceeded")), 5.0)
                    return f"idle for {idle:g} s"
                if not data:
                    return "client disconnected"
                out = wire.receive_data(data)
                if out:
                    await self._write(writer, out, idle)
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
                    if not await asyncio.wait_for(reader.read(READ_SIZE), left):
                        return
                except TimeoutError:
                    return
        finally:
            self._held -= 1

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, data: bytes, timeout: float) -> None:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), timeout)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a host does for a closed port or a REJECT rule."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _bind_error(host: str, port: int, exc: OSError) -> str:
    where = f"cannot listen on {host}:{port}"
    if exc.errno == errno.EACCES:
        return (f"{where}: permission denied (ports below 1024 need root or "
                "CAP_NET_BIND_SERVICE); use --ports offset")
    if exc.errno == errno.EADDRINUSE:
        return f"{where}: the port is in use (another lab running? try --offset)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"{where}: the address is not configured (on macOS only 127.0.0.1 is; add "
                f"the others, e.g. sudo ifconfig lo0 alias {host})")
    return f"{where}: {exc.strerror or exc}"
