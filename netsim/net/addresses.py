"""The address plan: every network's prefix, kind and ISP, and address-to-network lookup.

Addresses are plain ``int`` on the hot path (``ipaddress`` only parses them), and
a network is found by bisecting the sorted prefix starts, so a lookup costs O(log networks).
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class NetKind(StrEnum):
    """What a network is for; policies match on it (OP25B acts on DYNAMIC and VISITED)."""

    DYNAMIC = "dynamic"   # an ISP's subscriber pool
    STATIC = "static"     # an ISP's server network
    VISITED = "visited"   # hotel or café network, behind an upstream ISP
    HOSTING = "hosting"   # rented static addresses, behind an upstream ISP


@dataclass(frozen=True, slots=True)
class Subnet:
    """One network of the plan. ``isp`` is the owning ISP, or the upstream of a visited or
    hosting network: that ISP's filters apply to it."""

    index: int
    name: str
    kind: NetKind
    prefix: ipaddress.IPv4Network
    isp: int
    access_latency_s: float
    bandwidth_bps: float
    # the prefix's first and last addresses and its number of hosts, as plain ints once
    # (``ipaddress`` computes them anew on every read; a lookup needs them per session)
    first: int = field(init=False, repr=False, compare=False)
    last: int = field(init=False, repr=False, compare=False)
    hosts: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "first", int(self.prefix.network_address))
        object.__setattr__(self, "last", int(self.prefix.broadcast_address))
        object.__setattr__(self, "hosts", self.prefix.num_addresses - 2)

    def host(self, n: int) -> int:
        """The n-th host address (0-based), skipping the network address."""
        if not 0 <= n < self.hosts:
            raise ValueError(f"host {n} is outside {self.name} {self.prefix}")
        return self.first + 1 + n


class AddressPlan:
    """All networks of a world; they must not overlap (the scenario checks that first)."""

    def __init__(self, subnets: Iterable[Subnet]):
        self.subnets: tuple[Subnet, ...] = tuple(subnets)
        ordered = sorted(self.subnets, key=lambda s: s.first)
        self._starts = [s.first for s in ordered]
        self._ordered = ordered
        self.by_name = {s.name: s for s in self.subnets}

    def subnet_of(self, address: int) -> Subnet:
        """The network an address belongs to; KeyError for an address outside the plan."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address <= self._ordered[i].last:
            return self._ordered[i]
        raise KeyError(f"{text(address)} is in no network of the plan")


def text(address: int) -> str:
    """Dotted-quad text of an address (``ipaddress``'s, without building an object: a bot
    names itself in every HELO)."""
    if not 0 <= address < 1 << 32:
        raise ValueError(f"{address} is not an IPv4 address")
    return f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"
