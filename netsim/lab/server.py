"""The live lab: each ISP's mail server of a scenario on real sockets (asyncio).

A second adapter around the same engines the simulation drives. :class:`Lab` builds the
world (never run), listens on every server's services (SMTP, submission, POP3 and IMAP,
with and without TLS), and hands each connection to
:class:`~netsim.lab.session.Sessions`; accepted mail goes to the
:class:`~netsim.lab.store.Postmaster`, mail for other domains to the
:class:`~netsim.lab.relay.Relay`.
"""

from __future__ import annotations

import asyncio
import errno
from contextlib import suppress
from functools import partial

from netsim.errors import UserError
from netsim.lab.capture import LabCapture
from netsim.lab.layout import LabClock, LabLayout, Service, lab_world
from netsim.lab.relay import Relay
from netsim.lab.session import Sessions
from netsim.lab.settings import LabSettings
from netsim.lab.spool import Spool
from netsim.lab.store import Postmaster
from netsim.lab.tls import LabTLS
from netsim.scenario import Scenario

__all__ = ["Lab", "LabSettings"]


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
        self.tls = (LabTLS([*(s.hostname for s in self.layout.servers), *self.layout.hosts],
                           self.settings.tls_dir) if self.settings.tls else None)
        self.spool = None if self.settings.spool is None else Spool(self.settings.spool)
        self.relay = Relay(self.layout, self._smtp_endpoint, self.settings.relay, self.spool)
        self.postmaster = Postmaster(self.layout.servers, self.relay.enqueue, self.spool)
        #: What a spool gave back at start: maildrop copies, and queue entries resumed.
        self.restored = (self.postmaster.load(), 0)
        self.relay.attach(self.postmaster)
        #: (server index, service name) → (host, port) actually bound on loopback.
        self.bound: dict[tuple[int, str], tuple[str, int]] = {}
        #: The same on every interface, with ``bind_all``.
        self.exposed: dict[tuple[int, str], tuple[str, int]] = {}
        self._listeners: list[asyncio.Server] = []
        #: Packets written to the capture file when the lab stopped.
        self.packets = 0
        s = self.settings
        hold = self.world.scenario.smtp.connect_timeout_s if s.drop_hold_s is None \
            else s.drop_hold_s
        if s.pcap is not None and not s.pcap.parent.is_dir():
            raise UserError(f"--pcap {s.pcap}: no such folder {s.pcap.parent}")
        #: The sessions as a packet capture, written at stop (``LabSettings.pcap``).
        self.capture = None if s.pcap is None else LabCapture(self.layout, s.pcap)
        self.sessions = Sessions(self.layout, self.postmaster, self.clock, s,
                                 drop_hold_s=hold, tls=self.tls, capture=self.capture)

    # -- life cycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on every service; the scenario's clock starts now.

        Raises:
            UserError: If an address or port cannot be bound (nothing stays bound then).
        """
        self.clock.start()
        if self.capture is not None:
            self.capture.start()
        self.restored = (self.restored[0], self.relay.resume())
        s = self.settings
        try:
            for i in range(len(self.layout.servers)):
                for service in self.layout.services(i):
                    if service.implicit_tls and self.tls is None:
                        continue   # no TLS: nothing on 465, 995 and 993
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

    async def stop(self) -> int:
        """Stop listening, end every session (SMTP clients get 421) and the relay; write the
        capture, if the lab records one.

        Returns:
            Destination groups still queued in the relay, now lost.
        """
        for listener in self._listeners:
            listener.close()
        await self.sessions.close()
        for listener in self._listeners:
            with suppress(Exception):
                async with asyncio.timeout(1.0):
                    await listener.wait_closed()
        self._listeners.clear()
        lost = await self.relay.close()
        if self.capture is not None:
            self.packets = self.capture.write()
        return lost

    async def _listen(self, service: Service, host: str, port: int) -> tuple[str, int]:
        try:
            tls = self.tls.server_context if self.tls and service.implicit_tls else None
            listener = await asyncio.start_server(partial(self.sessions.handle, service), host,
                                                  port, reuse_address=True, ssl=tls)
        except OSError as exc:
            raise UserError(_bind_error(host, port, exc)) from None
        self._listeners.append(listener)
        name = listener.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    # -- where things are ----------------------------------------------------------------
    def endpoint(self, isp: str, service: str) -> tuple[str, int]:
        """The loopback host and port of a server's service (``smtp``, ``submission``,
        ``submissions``, ``pop3``, ``pop3s``, ``imap``, ``imaps``), by ISP name, domain or
        host name."""
        return self.bound[(self.layout.find_server(isp), service)]

    def mailbox(self, isp: str, user: int) -> list[bytes]:
        """The messages waiting for ``user<user>`` at an ISP (call from the lab's loop)."""
        return self.postmaster.mailbox(self.layout.find_server(isp), user)

    def _smtp_endpoint(self, address: int) -> tuple[str, int] | None:
        server = self.layout.server_at(address)
        return None if server is None else self.bound.get((server, "smtp"))


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
