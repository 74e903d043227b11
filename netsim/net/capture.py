"""What crossed the wire during a traced journey, as a capture on the clients' side sees it.

A traced run records its connections (the attempt, the bytes each side sent with the
instants the client sent or received them, the close) and its DNS exchanges here;
:mod:`netsim.net.pcap` turns them into packets. Nothing here knows SMTP or POP3: a
segment is bytes, and the adapters that run a dialogue say which bytes and when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netsim.net.dns import Answer
from netsim.net.network import Connection, Verdict
from netsim.protocols.wire import line_octets


@dataclass(frozen=True, slots=True)
class Opened:
    """A connection attempt from ``src`` to ``dst:port`` at ``at``; what became of it
    (``verdict``) and how long its SYN waited if it was dropped (``waited``)."""

    flow: int
    at: float
    src: int
    dst: int
    port: int
    verdict: Verdict
    one_way: float
    waited: float


@dataclass(frozen=True, slots=True)
class Sent:
    """Bytes one side of a connection sent, at the instant the client sent or received
    them."""

    flow: int
    at: float
    from_client: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The client closed the connection at ``at``."""

    flow: int
    at: float


@dataclass(frozen=True, slots=True)
class Lookup:
    """One DNS query from ``client`` to ``resolver`` at ``at``, answered at ``answered``."""

    at: float
    answered: float
    client: int
    resolver: int
    answer: Answer


Event = Opened | Sent | Closed | Lookup


@dataclass
class Capture:
    """The wire events of one journey, in the order they were recorded."""

    events: list[Event] = field(default_factory=list)
    _flows: dict[int, tuple[Connection, int]] = field(default_factory=dict)

    def opened(self, conn: Connection, at: float) -> None:
        """A connection attempt; later events name it by the same ``Connection``."""
        flow = len(self._flows) + 1
        self._flows[id(conn)] = (conn, flow)   # the connection kept: its id is not reused
        waited = conn.delay_s if conn.verdict is Verdict.DROPPED else 0.0
        self.events.append(Opened(flow, at, conn.src, conn.dst, conn.port, conn.verdict,
                                  conn.one_way_s, waited))

    def sent(self, conn: Connection, at: float, from_client: bool, lines: list[str]) -> None:
        """Lines one side sent, each ending in CRLF, as their wire octets."""
        self.sent_bytes(conn, at, from_client, line_octets(lines))

    def connected(self, src: int, dst: int, port: int, at: float, *,
                  verdict: Verdict = Verdict.OPEN, waited: float = 0.0) -> Connection:
        """A connection attempt the world's network did not make (the live lab's sockets
        are real), at ``at``; returns the ``Connection`` later events name it by.
        ``waited``: how long a dropped attempt's SYN went unanswered."""
        conn = Connection(verdict, waited, 0.0, src, dst, port)
        self.opened(conn, at)
        return conn

    def sent_bytes(self, conn: Connection, at: float, from_client: bool, data: bytes) -> None:
        """Octets one side sent, as they were (a real socket carries bytes, not lines)."""
        flow = self._flow(conn)
        if flow is not None and data:
            self.events.append(Sent(flow, at, from_client, data))

    def closed(self, conn: Connection, at: float) -> None:
        flow = self._flow(conn)
        if flow is not None:
            self.events.append(Closed(flow, at))

    def lookup(self, at: float, answered: float, client: int, resolver: int,
               answer: Answer) -> None:
        self.events.append(Lookup(at, answered, client, resolver, answer))

    def _flow(self, conn: Any) -> int | None:
        found = self._flows.get(id(conn))
        return found[1] if found is not None else None
