"""The lab's view of a world: which server listens where, on which ports, and on what clock.

Derived from the scenario alone, so ``netsim serve`` and the ``send``/``fetch`` clients agree
on every address and port without sharing any state file.

Ports: ``standard`` uses the real ones (SMTP 25, submission 587 and 465 with implicit TLS,
POP3 110 and 995 with implicit TLS, IMAP 143 and 993 with implicit TLS); ``offset`` adds an
offset (10000 by default: 10025, 10587, 10465, 10110, 10995, 10143, 10993) so no privileges
are needed; ``ephemeral`` (tests) lets the system pick free ports, which the running lab
reports. STARTTLS (SMTP, IMAP) and STLS (POP3) are offered on the plain ports
(``netsim.lab.tls``).

The clock: scenario time 0 is the moment the lab starts (or ``at`` seconds before it), and
it runs with the wall clock, so a policy with a start time comes into force that many
seconds after the start, greylisting delays and rate-limit refills take real seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from netsim.errors import UserError
from netsim.lab.addresses import STRANGER, AddressMap, parse_ipv4, text
from netsim.mail import MailServer
from netsim.mail.defences import MailboxQuota
from netsim.mail.mailbox import MaildropUsage
from netsim.scenario import Scenario
from netsim.world.build import CountingEnvironment, World

__all__ = ["RETRIEVAL", "SERVICES", "LabClock", "LabLayout", "PortMap", "Service", "lab_world"]

#: The lab's services: name and standard port.
SERVICES: tuple[tuple[str, int], ...] = (("smtp", 25), ("submission", 587), ("submissions", 465),
                                         ("pop3", 110), ("pop3s", 995), ("imap", 143),
                                         ("imaps", 993))
RETRIEVAL = frozenset({"pop3", "pop3s", "imap", "imaps"})   # mail reading: one slot pool
EXPOSED_STEP = 100  # --bind-all: server k (1-based) adds k * 100 to its ports


@dataclass(frozen=True, slots=True)
class PortMap:
    """Where the lab puts the standard ports.

    Attributes:
        mode: ``offset``, ``standard`` or ``ephemeral`` (the system picks free ports).
        offset: Added to each standard port in ``offset`` mode.
    """

    mode: Literal["offset", "standard", "ephemeral"] = "offset"
    offset: int = 10000

    def __post_init__(self) -> None:
        if self.mode == "offset" and not 1 <= self.offset <= 65535 - 995:
            raise UserError(f"--offset {self.offset}: must be between 1 and {65535 - 995}")

    def lab_port(self, port: int) -> int:
        """The port the lab binds for a standard port (0: any free port)."""
        if self.mode == "ephemeral":
            return 0
        return port if self.mode == "standard" else self.offset + port

    def exposed_port(self, port: int, server: int) -> int:
        """With ``--bind-all``: the port on every interface for server number ``server``
        (0-based); ``k * 100`` above the lab port never meets another service's port."""
        base = self.lab_port(port)
        if base == 0:
            return 0
        exposed = base + EXPOSED_STEP * (server + 1)
        if exposed > 65535:
            raise UserError(f"--bind-all: port {exposed} for server {server + 1} is beyond "
                            "65535; choose a smaller --offset")
        return exposed


@dataclass(frozen=True, slots=True)
class Service:
    """One listening service of one server.

    Attributes:
        server: The server's index in ``world.servers``.
        name: ``smtp`` (25), ``submission`` (587), ``submissions`` (465), ``pop3`` (110),
            ``pop3s`` (995), ``imap`` (143) or ``imaps`` (993).
        standard_port: The port as the lab presents it.
        scenario_port: The port the world's filters and listeners know it by: submission
            with implicit TLS is the world's 587, POP3 is 110 or 995 and IMAP 143 or 993 as
            the scenario says.
        implicit_tls: TLS from the first octet (465, 995, 993; RFC 8314).
    """

    server: int
    name: str
    standard_port: int
    scenario_port: int
    implicit_tls: bool = False

    @property
    def is_pop3(self) -> bool:
        return self.name in ("pop3", "pop3s")

    @property
    def is_imap(self) -> bool:
        return self.name in ("imap", "imaps")

    @property
    def is_retrieval(self) -> bool:
        """POP3 or IMAP: mail reading, which shares one pool of session slots."""
        return self.name in RETRIEVAL


class LabClock(CountingEnvironment):
    """A SimPy environment that is never run: ``now`` follows the wall clock from ``start``.

    Policies read ``server.env.now``; with this clock they see the seconds since the lab
    started, plus ``at``.
    """

    def __init__(self, at: float = 0.0) -> None:
        super().__init__()
        self.at = at
        self._started = time.monotonic()

    def start(self) -> None:
        """Make now ``at`` (the lab starts)."""
        self._started = time.monotonic()

    @property
    def now(self) -> float:
        """Scenario seconds: ``at`` plus the wall-clock seconds since :meth:`start`."""
        return self.at + time.monotonic() - self._started


def lab_world(scenario: Scenario, at: float = 0.0) -> World:
    """Build (never run) the scenario's world on a wall clock starting at ``at``. A
    mailbox quota reads the lab's maildrops, where clients really delete and expunge."""
    world = World(scenario, env=LabClock(at))
    for server in world.servers:
        if server.usage is not None:
            server.usage = None   # the maildrops keep the record
            for policy in server.policies:
                if isinstance(policy, MailboxQuota):
                    policy.usage = MaildropUsage(server.maildrops)
    return world


class LabLayout:
    """Servers, their loopback addresses and services, for one world and port map."""

    def __init__(self, world: World, ports: PortMap) -> None:
        self.world = world
        self.ports = ports
        self.addresses = AddressMap(world.plan)
        self.servers: list[MailServer] = list(world.servers)
        try:
            self.hosts = [self.addresses.lab_text(s.address) for s in self.servers]
        except ValueError as exc:
            raise UserError(f"the lab cannot map this scenario: {exc}") from None

    def services(self, server: int) -> list[Service]:
        """The services a server offers: SMTP, submission (587, and 465 with TLS) where the
        ISP has it, POP3 (110, and 995 with TLS), IMAP (143, and 993 with TLS)."""
        isp = self.world.scenario.isps[server]
        pop3_port = 995 if isp.mail_server.pop3_security == "pop3s" else 110
        imap_port = 993 if isp.mail_server.imap_security == "imaps" else 143
        out = [Service(server, "smtp", 25, 25)]
        if isp.policies.submission is not None:
            out += [Service(server, "submission", 587, 587),
                    Service(server, "submissions", 465, 587, implicit_tls=True)]
        out += [Service(server, "pop3", 110, pop3_port),
                Service(server, "pop3s", 995, pop3_port, implicit_tls=True),
                Service(server, "imap", 143, imap_port),
                Service(server, "imaps", 993, imap_port, implicit_tls=True)]
        return out

    def service(self, server: int, port: int) -> Service:
        """The service of a server by standard port (25, 587, 465, 110, 995, 143, 993).

        Raises:
            UserError: If the server does not offer it.
        """
        for found in self.services(server):
            if found.standard_port == port:
                return found
        raise UserError(f"{self.servers[server].hostname} offers no service on port {port} "
                        "in this scenario")

    def find_server(self, name: str) -> int:
        """A server by ISP name, domain or host name (``isp-a``, ``isp-a.example``, ...).

        Raises:
            UserError: If no server has that name.
        """
        for i, server in enumerate(self.servers):
            if name in (server.isp, server.domain, server.hostname, self.hosts[i]):
                return i
        known = ", ".join(s.isp for s in self.servers)
        raise UserError(f"--server {name}: no such ISP (known: {known})")

    def server_at(self, address: int) -> int | None:
        """The index of the server with this scenario address, if any."""
        for i, server in enumerate(self.servers):
            if server.address == address:
                return i
        return None

    def client_source(self, value: str | None) -> str:
        """A client's source address as loopback text: a loopback address as given, or a
        scenario address mapped into 127.0.0.0/8; none given is ``127.0.0.1``, a stranger.

        Raises:
            UserError: If the address is not IPv4 or has no lab address.
        """
        if value is None:
            return STRANGER
        try:
            address = parse_ipv4(value)
            if address >> 24 == 127:
                return text(address)
            return self.addresses.lab_text(address)
        except ValueError as exc:
            raise UserError(f"--from-address {value}: {exc}") from None
