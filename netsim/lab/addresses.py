"""The lab's address mapping: every network of the scenario gets its own /16 of 127.0.0.0/8.

The whole of 127.0.0.0/8 is local on Linux, so each ISP's server can listen on an address of
its own and a client can pick its source address to stand in a given network. Network number
``n`` of the scenario's address plan (0-based, in the order ``netsim serve`` lists them) maps
to ``127.(n+1).0.0/16``, and the address at offset ``k`` from its network's first address maps
to ``127.(n+1).(k // 256).(k % 256)``::

    default world   isp-a.dynamic 10.1.0.0/16      → 127.1.0.0/16   10.1.0.5  → 127.1.0.5
                    isp-a.static  192.0.2.0/28     → 127.2.0.0/28   192.0.2.1 → 127.2.0.1
                    isp-b.dynamic 10.2.0.0/16      → 127.3.0.0/16   10.2.0.5  → 127.3.0.5

The network number, not the scenario's octets, picks the second octet, so two networks can
never collide (10.1.x.y and 10.2.x.y land in different /16s whatever their sizes). The
mapping is reversible: :meth:`AddressMap.scenario_address` undoes :meth:`AddressMap.lab_address`.
``127.0.0.0/16`` (``127.0.0.1``, the usual loopback) is outside every network: a client there
is a stranger on the Internet, as is any client outside 127.0.0.0/8. Only the first 65,536
addresses of a network larger than a /16, and only the first 255 networks, have lab addresses.
"""

from __future__ import annotations

import ipaddress

from netsim.net import AddressPlan, Subnet

__all__ = ["MAX_NETWORKS", "STRANGER", "AddressMap", "parse_ipv4", "text"]

MAX_NETWORKS = 255
_OFFSETS = 1 << 16
_LOOPBACK = int(ipaddress.IPv4Address("127.0.0.0"))
#: The usual loopback address, outside every network of the scenario.
STRANGER = "127.0.0.1"


def text(address: int) -> str:
    """Dotted-quad text of an IPv4 address held as an int."""
    return str(ipaddress.IPv4Address(address))


def parse_ipv4(value: str) -> int:
    """An IPv4 address as an int.

    Raises:
        ValueError: If ``value`` is not a dotted-quad IPv4 address.
    """
    return int(ipaddress.IPv4Address(value))


class AddressMap:
    """Scenario addresses to loopback addresses and back, for one address plan."""

    def __init__(self, plan: AddressPlan) -> None:
        self.plan = plan
        self._by_index = {s.index: s for s in plan.subnets}

    def lab_address(self, address: int) -> int:
        """The loopback address standing for a scenario address.

        Raises:
            ValueError: If the address is in no network of the plan, or its network or its
                offset in the network is beyond what the lab maps.
        """
        try:
            subnet = self.plan.subnet_of(address)
        except KeyError:
            raise ValueError(f"{text(address)} is in no network of the scenario") from None
        offset = address - subnet.first
        if subnet.index >= MAX_NETWORKS or offset >= _OFFSETS:
            raise ValueError(f"{text(address)} ({subnet.name}) has no lab address: the lab "
                             f"maps {MAX_NETWORKS} networks of at most {_OFFSETS} addresses")
        return _LOOPBACK + ((subnet.index + 1) << 16) + offset

    def scenario_address(self, lab: int) -> int | None:
        """The scenario address a loopback address stands for; ``None`` for a stranger.

        A stranger is any address outside 127.0.0.0/8, anything in 127.0.0.0/16, and any
        loopback address past the end of its network.
        """
        if lab >> 24 != 127:
            return None
        number = ((lab >> 16) & 0xFF) - 1
        subnet = self._by_index.get(number)
        if subnet is None:
            return None
        address = subnet.first + (lab & 0xFFFF)
        return address if address <= subnet.last else None

    def lab_text(self, address: int) -> str:
        """:meth:`lab_address` as dotted-quad text."""
        return text(self.lab_address(address))

    def client_address(self, peer: str) -> int | None:
        """The scenario address of a connected peer given as text (``None``: a stranger)."""
        try:
            return self.scenario_address(parse_ipv4(peer))
        except ValueError:  # an IPv6 peer (with --bind-all): outside every network
            return None

    def lab_prefix(self, subnet: Subnet) -> str:
        """The loopback range of a network, e.g. ``127.1.0.0/16`` (its first 65,536 addresses
        for a network larger than a /16); empty if the network has no lab addresses."""
        if subnet.index >= MAX_NETWORKS:
            return ""
        length = max(subnet.prefix.prefixlen, 16)
        return f"{text(_LOOPBACK + ((subnet.index + 1) << 16))}/{length}"
