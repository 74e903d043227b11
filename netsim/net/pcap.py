"""A journey's wire events as a pcap file that Wireshark and tshark dissect.

Packets are built with scapy (its checksums, its DNS encoding) from :mod:`netsim.net.capture`:

- an open connection is the three-way handshake, each side's bytes as segments of at most
  one MSS with sequence and acknowledgement numbers that follow them, and a FIN from each
  side after the client closes;
- a connection whose SYN an ACL dropped (OP25B's ``drop``) is the SYN and its
  retransmissions, unanswered, until the client's connect timeout;
- a rejected one (an ACL's ``reject``, or no listener) is the SYN and the server's RST;
- a DNS query is a UDP/53 datagram from the asking host to its ISP's resolver, and the
  answer a datagram back with the records, NXDOMAIN (rcode 3) or SERVFAIL (rcode 2).

The capture point is the client's side of each connection: what the client sends is
stamped when it is sent, what it receives when it arrives. Timestamps are simulated
seconds after ``epoch`` (the Unix epoch unless given). Message text is what the
simulation's ``Mail.text_lines`` gives, so a message of a modelled size carries its
headers and a short body, not that many octets.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from netsim.net.addresses import text
from netsim.net.capture import Closed, Event, Lookup, Opened, Sent
from netsim.net.dns import MX, RCode
from netsim.net.network import Verdict

MSS = 1460
EPHEMERAL_FIRST = 49152          # IANA's dynamic ports (RFC 6335)
SYN_RETRIES_S = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)   # Linux: an initial RTO of 1 s, doubled
RCODES = {RCode.NOERROR: 0, RCode.SERVFAIL: 2, RCode.NXDOMAIN: 3}


def write_pcap(path: str | Path, events: Iterable[Event], *, epoch: float = 0.0) -> int:
    """Write ``events`` to ``path`` as a pcap file (Ethernet link type); the number of
    packets written."""
    from scapy.utils import PcapWriter  # imported on use: scapy is slow to import

    packets = sorted(packets_of(events), key=lambda p: p[0])   # stable: a flow keeps order
    with PcapWriter(str(path), linktype=1, sync=False) as writer:
        for at, packet in packets:
            packet.time = epoch + at
            writer.write(packet)
    return len(packets)


def packets_of(events: Iterable[Event]) -> Iterator[tuple[float, Any]]:
    """(instant, packet) for each event, a flow's packets in its own order."""
    ports = itertools.count(EPHEMERAL_FIRST)
    ids = itertools.count(1)
    flows: dict[int, _Flow] = {}
    for event in events:
        if isinstance(event, Opened):
            flow = flows[event.flow] = _Flow(event, next(ports))
            yield from flow.opening()
        elif isinstance(event, Sent):
            yield from flows[event.flow].send(event.at, event.from_client, event.data)
        elif isinstance(event, Closed):
            yield from flows[event.flow].close(event.at)
        elif isinstance(event, Lookup):
            yield from _dns(event, next(ports), next(ids) & 0xFFFF)


def _mac(address: int) -> str:
    """A locally administered MAC address that carries the host's IPv4 address."""
    return "02:00:" + ":".join(f"{b:02x}" for b in address.to_bytes(4, "big"))


def _ip(src: int, dst: int) -> Any:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether
    return Ether(src=_mac(src), dst=_mac(dst)) / IP(src=text(src), dst=text(dst), ttl=64)


class _Flow:
    """One TCP connection's sequence numbers on both sides."""

    def __init__(self, opened: Opened, sport: int):
        self.o = opened
        self.sport = sport
        # initial sequence numbers: fixed per flow, so that a capture is reproducible
        self.seq = {True: 1000 * opened.flow, False: 5000 * opened.flow}

    def _tcp(self, from_client: bool, flags: str, payload: bytes = b"",
             options: list[tuple[str, int]] | None = None) -> Any:
        from scapy.layers.inet import TCP
        o = self.o
        src, dst = (o.src, o.dst) if from_client else (o.dst, o.src)
        sport, dport = (self.sport, o.port) if from_client else (o.port, self.sport)
        ack = self.seq[not from_client] if "A" in flags else 0
        segment = TCP(sport=sport, dport=dport, flags=flags, seq=self.seq[from_client],
                      ack=ack, window=65535, options=options or [])
        packet = _ip(src, dst) / segment
        if payload:
            packet = packet / payload
        self.seq[from_client] += len(payload) + ("S" in flags) + ("F" in flags)
        return packet

    def opening(self) -> Iterator[tuple[float, Any]]:
        o = self.o
        mss = [("MSS", MSS)]
        if o.verdict is Verdict.DROPPED:   # unanswered; the client retries until it gives up
            start = self.seq[True]
            for retry in itertools.chain([0.0], itertools.accumulate(SYN_RETRIES_S)):
                if retry >= o.waited:
                    break
                self.seq[True] = start
                yield o.at + retry, self._tcp(True, "S", options=mss)
            return
        yield o.at, self._tcp(True, "S", options=mss)
        back = o.at + 2 * o.one_way
        if o.verdict is Verdict.OPEN:
            yield back, self._tcp(False, "SA", options=mss)
            yield back, self._tcp(True, "A")
        else:                              # an ACL's reject, or nothing listening: RST
            yield back, self._tcp(False, "RA")

    def send(self, at: float, from_client: bool, data: bytes) -> Iterator[tuple[float, Any]]:
        for start in range(0, len(data), MSS):
            chunk = data[start:start + MSS]
            last = start + MSS >= len(data)
            yield at, self._tcp(from_client, "PA" if last else "A", chunk)

    def close(self, at: float) -> Iterator[tuple[float, Any]]:
        back = at + 2 * self.o.one_way
        yield at, self._tcp(True, "FA")
        yield back, self._tcp(False, "FA")
        yield back, self._tcp(True, "A")


def _dns(lookup: Lookup, sport: int, query_id: int) -> Iterator[tuple[float, Any]]:
    from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRRMX
    from scapy.layers.inet import UDP
    answer = lookup.answer
    question = DNSQR(qname=answer.name, qtype=answer.rtype)
    yield lookup.at, (_ip(lookup.client, lookup.resolver) / UDP(sport=sport, dport=53)
                      / DNS(id=query_id, rd=1, qd=[question]))
    records: list[Any] = []
    for record in answer.records:
        if isinstance(record, MX):
            records.append(DNSRRMX(rrname=answer.name, type="MX", ttl=300,
                                   preference=record.preference, exchange=record.exchange))
        else:
            records.append(DNSRR(rrname=answer.name, type="A", ttl=300, rdata=text(record)))
    response = DNS(id=query_id, qr=1, rd=1, ra=1, rcode=RCODES[answer.rcode], qd=[question],
                   an=records)
    yield lookup.answered, (_ip(lookup.resolver, lookup.client) / UDP(sport=53, dport=sport)
                            / response)

