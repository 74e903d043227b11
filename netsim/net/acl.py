"""Packet filters as ordered ACL rules: first match decides, no match accepts.

Every policy that stops a connection is a ``Rule`` here, evaluated at the source ISP's
egress and the destination ISP's ingress. OP25B is one such rule (see ``op25b_rule``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    """What a matching rule does to a SYN."""

    ACCEPT = "accept"
    DROP = "drop"      # silently discarded: the client waits its connect timeout
    REJECT = "reject"  # answered with a TCP reset: the client learns in one round trip


@dataclass(frozen=True, slots=True)
class Rule:
    """Match on source network, destination network or address, and destination port.

    ``None`` matches anything. ``dst_except`` lists destination addresses the rule never
    matches (OP25B spares the ISP's own mail server). ``active_from`` is a simulated time
    before which the rule is not in force.
    """

    name: str
    action: Action
    ports: frozenset[int] | None = None
    src_subnets: frozenset[int] | None = None
    dst_subnets: frozenset[int] | None = None
    dst_except: frozenset[int] = field(default_factory=frozenset)
    active_from: float = 0.0

    def matches(self, src_subnet: int, dst_subnet: int, dst_address: int, port: int,
                now: float) -> bool:
        return (now >= self.active_from
                and (self.ports is None or port in self.ports)
                and (self.src_subnets is None or src_subnet in self.src_subnets)
                and (self.dst_subnets is None or dst_subnet in self.dst_subnets)
                and dst_address not in self.dst_except)


class ACL:
    """An ordered list of rules at one point of the network (an ISP's egress or ingress)."""

    def __init__(self, rules: Iterable[Rule] = ()):
        self.rules: list[Rule] = list(rules)

    def append(self, rule: Rule) -> None:
        self.rules.append(rule)

    def first_match(self, src_subnet: int, dst_subnet: int, dst_address: int, port: int,
                    now: float) -> Rule | None:
        for rule in self.rules:
            if rule.matches(src_subnet, dst_subnet, dst_address, port, now):
                return rule
        return None


def op25b_rule(isp_name: str, access_subnets: Iterable[int], own_servers: Iterable[int], *,
               action: Action = Action.DROP, active_from: float = 0.0) -> Rule:
    """Outbound Port 25 Blocking: port 25 from the ISP's dynamic pool (and the visited networks
    behind it) to any address but the ISP's own mail server is dropped or rejected."""
    return Rule(name="op25b", action=action, ports=frozenset({25}),
                src_subnets=frozenset(access_subnets), dst_except=frozenset(own_servers),
                active_from=active_from)
