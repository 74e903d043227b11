"""``netsim serve --pcap FILE``: the lab's sessions as a packet capture, as the world sees them.

Each connection to a lab server is recorded as :class:`netsim.net.capture.Capture` events
and written with :func:`netsim.net.pcap.write_pcap` when the lab stops:

- Addresses and ports are the world's: the server's scenario address and the standard port
  of the service (25, 587, 465, 110, 995, 143, 993, not the lab's 10025 …), so Wireshark
  dissects SMTP, POP3 and IMAP by port; the client is its scenario address where its
  loopback address stands for one, else its real address (127.0.0.1: a stranger). Client
  ports are the capture's own (49152 onwards), as in ``netsim trace --pcap``.
- Times: octets are stamped when the lab read them from its socket or wrote them to it; the
  file holds wall-clock times (the lab's start plus the monotonic seconds since).
- TLS: inside TLS the lab sees plaintext that never crossed the wire, so none of it is
  recorded. A STARTTLS or STLS connection shows its plain dialogue up to the server's
  go-ahead, then only its close; one to 465, 995 or 993 shows its handshake and close.
- A connection the world's filters dropped is unanswered SYNs for as long as the lab held
  it; a rejected one a SYN and a reset (as ``netsim trace --pcap`` draws them).
- The capture is kept in memory until the lab stops, then written beside FILE and renamed
  over it, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from netsim.errors import UserError
from netsim.lab.addresses import parse_ipv4
from netsim.lab.layout import LabLayout, Service
from netsim.net.capture import Capture
from netsim.net.network import Connection, Verdict
from netsim.net.pcap import write_pcap

__all__ = ["Flow", "LabCapture"]

MIN_WAIT_S = 0.001   # a dropped attempt shows its first SYN, however soon it ended


class Flow:
    """One connection's recording (none when ``capture`` is None: the lab records nothing).

    Args:
        capture: Where the connection is recorded.
        conn: The connection as the capture knows it.
        plain: Whether its octets are plaintext on the wire (False from the first octet on
            465, 995 and 993).
    """

    def __init__(self, capture: LabCapture | None = None, conn: Connection | None = None,
                 *, plain: bool = True) -> None:
        self._capture = capture
        self._conn = conn
        self._plain = plain

    def received(self, data: bytes) -> None:
        """Octets the client sent, as the lab read them."""
        self._add(True, data)

    def sent(self, data: bytes) -> None:
        """Octets the server sent, as the lab wrote them."""
        self._add(False, data)

    def encrypted(self) -> None:
        """TLS starts (after STARTTLS or STLS): nothing after it is recorded."""
        self._plain = False

    def closed(self) -> None:
        """The connection ended (drawn as the client's FIN, then the server's)."""
        if self._capture is not None and self._conn is not None:
            self._capture.capture.closed(self._conn, self._capture.now())

    def _add(self, from_client: bool, data: bytes) -> None:
        if self._plain and self._capture is not None and self._conn is not None:
            self._capture.capture.sent_bytes(self._conn, self._capture.now(), from_client,
                                             data)


class LabCapture:
    """Every connection of a lab, with the world's addresses, until it is written to
    ``path``."""

    def __init__(self, layout: LabLayout, path: Path) -> None:
        self.layout = layout
        self.path = path
        self.capture = Capture()
        self._epoch = time.time()
        self._start = time.monotonic()

    def start(self) -> None:
        """Time 0 of the capture is now (the lab starts)."""
        self._epoch, self._start = time.time(), time.monotonic()

    def now(self) -> float:
        """Seconds since the lab started."""
        return time.monotonic() - self._start

    def flow(self, service: Service, peer_host: str, client: int | None) -> Flow:
        """An open connection to ``service`` from ``peer_host`` (scenario address
        ``client``, None for a stranger)."""
        conn = self._connect(service, peer_host, client, Verdict.OPEN, self.now(), 0.0)
        return Flow(self, conn, plain=not service.implicit_tls)

    def filtered(self, service: Service, peer_host: str, client: int | None, verdict: Verdict,
                 since: float) -> None:
        """A connection the world's filters rejected, or dropped and held from ``since``
        (seconds after the start) until now."""
        waited = 0.0
        if verdict is Verdict.DROPPED:
            waited = max(self.now() - since, MIN_WAIT_S)
        self._connect(service, peer_host, client, verdict, since, waited)

    def write(self) -> int:
        """Write the capture beside ``path`` and rename it into place; the number of packets.

        Raises:
            UserError: If the file cannot be written.
        """
        path = self.path
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            count = write_pcap(tmp, self.capture.events, epoch=self._epoch)
            os.replace(tmp, path)
        except OSError as exc:
            raise UserError(f"--pcap {path}: cannot write it: {exc.strerror or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return count

    def _connect(self, service: Service, peer_host: str, client: int | None,
                 verdict: Verdict, at: float, waited: float) -> Connection | None:
        if client is None:
            try:
                client = parse_ipv4(peer_host)
            except ValueError:   # an IPv6 peer (--bind-all): no IPv4 packet can show it
                return None
        server = self.layout.servers[service.server].address
        return self.capture.connected(client, server, service.standard_port, at,
                                      verdict=verdict, waited=waited)
