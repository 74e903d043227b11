"""Connection set-up: ACLs at the source's egress and the destination's ingress, then a listener.

Nothing here waits: ``connect`` returns the verdict and what it costs the client in time,
and the SimPy layer applies the delay. A dropped SYN costs the client its connect timeout;
a reset (an ACL's reject, or no listener on the port) costs one round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from netsim.net.acl import ACL, Action, Filter
from netsim.net.addresses import AddressPlan, Subnet, text
from netsim.net.topology import Topology


class Verdict(StrEnum):
    """How a TCP connection attempt ends."""

    OPEN = "open"
    DROPPED = "dropped"    # an ACL dropped the SYN
    REJECTED = "rejected"  # an ACL answered with a reset
    REFUSED = "refused"    # reached the host, nothing listens on the port


@dataclass(frozen=True, slots=True)
class Connection:
    """The outcome of one connection attempt.

    ``delay_s`` is what the attempt costs the client: for an open connection the TCP
    handshake (one round trip), after which the client can send.
    """

    verdict: Verdict
    delay_s: float
    one_way_s: float
    src: int
    dst: int
    port: int
    rule: Filter | None = None
    where: str = ""          # "egress:<isp>" or "ingress:<isp>" for an ACL verdict
    listener: Any = None

    @property
    def is_open(self) -> bool:
        return self.verdict is Verdict.OPEN

    @property
    def stopped_by(self) -> str:
        """What stopped a connection that never opened: the ACL rule's name (``op25b``), or
        ``connection_refused`` when nothing listens on the port."""
        return self.rule.name if self.rule is not None else "connection_refused"

    @property
    def rtt_s(self) -> float:
        return 2 * self.one_way_s

    def describe(self) -> str:
        """``10.1.0.5 → 198.51.100.1:25 open`` and, for a filtered attempt, the rule."""
        line = f"{text(self.src)} → {text(self.dst)}:{self.port} {self.verdict}"
        if self.rule is not None:
            line += f" by {self.rule.name} ({self.where}, {self.rule.action})"
        return line


class Network:
    """The world's IP layer: address plan, latencies, filters and listening sockets."""

    def __init__(self, plan: AddressPlan, topology: Topology, *, connect_timeout_s: float):
        self.plan = plan
        self.topology = topology
        self.connect_timeout_s = connect_timeout_s
        self.egress = [ACL() for _ in topology.isps]
        self.ingress = [ACL() for _ in topology.isps]
        # (address, port) -> (listener, when it starts accepting connections)
        self._listeners: dict[tuple[int, int], tuple[Any, float]] = {}

    def listen(self, address: int, port: int, listener: Any, *, from_s: float = 0.0) -> None:
        """Bind a listener (any object the mail layer understands) to address:port; it
        accepts connections from ``from_s`` on (a policy's start time), refused before."""
        self.plan.subnet_of(address)  # the address must exist in the plan
        self._listeners[(address, port)] = (listener, from_s)

    def listener(self, address: int, port: int, now: float = math.inf) -> Any:
        """What listens at address:port by ``now`` (by default: ever), else None."""
        found = self._listeners.get((address, port))
        return found[0] if found is not None and found[1] <= now else None

    def changes(self) -> set[float]:
        """The instants at which a connection's verdict can change: rules and listeners
        coming into force."""
        return ({rule.active_from for acl in (*self.egress, *self.ingress) for rule in acl.rules}
                | {from_s for _, from_s in self._listeners.values()})

    def source_cuts(self) -> list[int]:
        """Addresses at which a rule's source address blocks begin or end (after the last
        address, ``last + 1``): within a network, between two cuts, every host gets the same
        verdict from the stateless rules."""
        return sorted({cut for acl in (*self.egress, *self.ingress) for rule in acl.rules
                       for lo, hi in rule.scope.src_ranges or () for cut in (lo, hi + 1)})

    def per_host(self, src: int, dst: int, port: int, now: float) -> bool:
        """Whether the verdict on this attempt depends on the source host's past attempts
        (a stateful rule is the first whose scope holds it, at egress or ingress). Counts
        nothing: ``connect`` is what counts an attempt."""
        src_net = self.plan.subnet_of(src)
        dst_net = self.plan.subnet_of(dst)
        for acl in (self.egress[src_net.isp], self.ingress[dst_net.isp]):
            rule = acl.first_in_scope(src_net.index, src, dst_net.index, dst, port, now)
            if rule is not None and (rule.per_host or rule.action is not Action.ACCEPT):
                return rule.per_host
        return False

    def one_way(self, src: int, dst: int) -> float:
        return self.topology.one_way(self.plan.subnet_of(src), self.plan.subnet_of(dst))

    def bottleneck_bps(self, src: int, dst: int) -> float:
        """The slower of the two ends' access rates."""
        return min(self.plan.subnet_of(src).bandwidth_bps, self.plan.subnet_of(dst).bandwidth_bps)

    def connect(self, src: int, dst: int, port: int, now: float) -> Connection:
        """Try a TCP connection from src to dst:port at simulated time ``now``."""
        src_net = self.plan.subnet_of(src)
        dst_net = self.plan.subnet_of(dst)
        one_way = self.topology.one_way(src_net, dst_net)
        for acl, point, net in ((self.egress[src_net.isp], "egress", src_net),
                                (self.ingress[dst_net.isp], "ingress", dst_net)):
            rule = acl.first_match(src_net.index, src, dst_net.index, dst, port, now)
            if rule is not None and rule.action is not Action.ACCEPT:
                where = _where(point, self, net)
                if rule.action is Action.DROP:
                    return Connection(Verdict.DROPPED, self.connect_timeout_s, one_way,
                                      src, dst, port, rule, where)
                return Connection(Verdict.REJECTED, 2 * one_way, one_way, src, dst, port,
                                  rule, where)
        listener = self.listener(dst, port, now)
        if listener is None:
            return Connection(Verdict.REFUSED, 2 * one_way, one_way, src, dst, port)
        return Connection(Verdict.OPEN, 2 * one_way, one_way, src, dst, port, listener=listener)


def _where(point: str, network: Network, subnet: Subnet) -> str:
    return f"{point}:{network.topology.isps[subnet.isp]}"
