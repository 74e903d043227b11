"""Packet filters as ordered ACL rules: first match decides, no match accepts.

Every policy that stops a connection is a rule here, evaluated at the source ISP's egress
and the destination ISP's ingress. OP25B is one such rule (see ``op25b_rule``): over the
whole dynamic pool, or over one address block of it; OP25B on the ISP's top talkers is a
stateful one (``TopTalkers``), whose verdict depends on the host's own past attempts.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar


class Action(StrEnum):
    """What a matching rule does to a SYN."""

    ACCEPT = "accept"
    DROP = "drop"      # silently discarded: the client waits its connect timeout
    REJECT = "reject"  # answered with a TCP reset: the client learns in one round trip


@dataclass(frozen=True, slots=True)
class Rule:
    """Match on source network and address range, destination network or address, and
    destination port.

    ``None`` matches anything. ``src_ranges`` (inclusive first and last addresses) narrows
    the source further to some address blocks of its networks (OP25B on a share of a pool).
    ``dst_except`` lists destination addresses the rule never matches (OP25B spares the
    ISP's own mail server). ``active_from`` is a simulated time before which the rule is not
    in force.
    """

    name: str
    action: Action
    ports: frozenset[int] | None = None
    src_subnets: frozenset[int] | None = None
    dst_subnets: frozenset[int] | None = None
    dst_except: frozenset[int] = field(default_factory=frozenset)
    active_from: float = 0.0
    src_ranges: tuple[tuple[int, int], ...] | None = None

    # whether the verdict depends on the source host's past attempts (``TopTalkers``)
    per_host: ClassVar[bool] = False

    @property
    def scope(self) -> Rule:
        """The connections the rule looks at: for a stateless rule, those it matches."""
        return self

    def matches(self, src_subnet: int, src_address: int, dst_subnet: int, dst_address: int,
                port: int, now: float) -> bool:
        return (now >= self.active_from
                and (self.ports is None or port in self.ports)
                and (self.src_subnets is None or src_subnet in self.src_subnets)
                and (self.src_ranges is None
                     or any(lo <= src_address <= hi for lo, hi in self.src_ranges))
                and (self.dst_subnets is None or dst_subnet in self.dst_subnets)
                and dst_address not in self.dst_except)


class TopTalkers:
    """A stateful rule: a source host in its scope that makes more than ``max_connections``
    attempts in its scope within any ``window_s`` is stopped from that attempt on, for the
    rest of the run.

    Every attempt the scope matches counts, as it reaches the rule (an earlier rule of the
    ACL that decides it first hides it); attempts after a host's block are stopped without
    counting, since the block is not lifted. The hosts' attempts must come in time order: an
    attempt earlier than one already counted for the same host, or than its block, is
    counted in ``out_of_order`` (the flow path's queues make a minute's attempts at its end,
    docs/fidelity.md).
    """

    per_host: ClassVar[bool] = True

    def __init__(self, scope: Rule, *, max_connections: int, window_s: float):
        if max_connections < 1 or not window_s > 0:
            raise ValueError(f"{scope.name}: max_connections must be at least 1 and window_s "
                             f"positive (got {max_connections}, {window_s})")
        self.scope = scope
        self.max_connections = max_connections
        self.window_s = window_s
        self.attempts: dict[int, list[float]] = {}   # by host: counted instants, ascending
        self.blocked_from: dict[int, float] = {}     # by host: the attempt over the limit
        self.out_of_order = 0

    @property
    def name(self) -> str:
        return self.scope.name

    @property
    def action(self) -> Action:
        return self.scope.action

    @property
    def active_from(self) -> float:
        return self.scope.active_from

    def matches(self, src_subnet: int, src_address: int, dst_subnet: int, dst_address: int,
                port: int, now: float) -> bool:
        """Count an attempt in scope and say whether its host is over the limit."""
        if not self.scope.matches(src_subnet, src_address, dst_subnet, dst_address, port, now):
            return False
        blocked = self.blocked_from.get(src_address)
        if blocked is not None:
            # an attempt earlier than the block, come after it, would have been counted
            self.out_of_order += now < blocked
            return True
        times = self.attempts.setdefault(src_address, [])
        if times and now < times[-1]:
            self.out_of_order += 1
        bisect.insort(times, now)
        # instants that left the window of every later attempt are forgotten
        del times[:bisect.bisect_right(times, times[-1] - self.window_s)]
        within = bisect.bisect_right(times, now) - bisect.bisect_right(times, now - self.window_s)
        if within > self.max_connections:
            self.blocked_from[src_address] = now
            del self.attempts[src_address]
            return True
        return False


Filter = Rule | TopTalkers


class ACL:
    """An ordered list of rules at one point of the network (an ISP's egress or ingress)."""

    def __init__(self, rules: Iterable[Filter] = ()):
        self.rules: list[Filter] = list(rules)

    def append(self, rule: Filter) -> None:
        self.rules.append(rule)

    def first_match(self, src_subnet: int, src_address: int, dst_subnet: int, dst_address: int,
                    port: int, now: float) -> Filter | None:
        for rule in self.rules:
            if rule.matches(src_subnet, src_address, dst_subnet, dst_address, port, now):
                return rule
        return None

    def first_in_scope(self, src_subnet: int, src_address: int, dst_subnet: int,
                       dst_address: int, port: int, now: float) -> Filter | None:
        """The first rule whose scope holds the attempt; unlike ``first_match`` it counts
        nothing (a stateful rule there may still let the attempt pass)."""
        for rule in self.rules:
            if rule.scope.matches(src_subnet, src_address, dst_subnet, dst_address, port, now):
                return rule
        return None


def op25b_rule(isp_name: str, access_subnets: Iterable[int], own_servers: Iterable[int], *,
               action: Action = Action.DROP, active_from: float = 0.0,
               src_ranges: Iterable[tuple[int, int]] | None = None) -> Rule:
    """Outbound Port 25 Blocking: port 25 from the ISP's dynamic pool (and the visited networks
    behind it) to any address but the ISP's own mail server is dropped or rejected.
    ``src_ranges`` narrows it to address blocks of those networks (a share of the pool)."""
    return Rule(name="op25b", action=action, ports=frozenset({25}),
                src_subnets=frozenset(access_subnets), dst_except=frozenset(own_servers),
                active_from=active_from,
                src_ranges=None if src_ranges is None else tuple(src_ranges))


def top_talkers_rule(pool: int, own_servers: Iterable[int], *,
                     max_connections: int, window_s: float, action: Action = Action.DROP,
                     active_from: float = 0.0) -> TopTalkers:
    """OP25B on the ISP's top talkers: port 25 from a host of its dynamic pool to any address
    but the ISP's own mail server, once that host has made more than ``max_connections``
    such attempts within ``window_s``."""
    return TopTalkers(Rule(name="op25b_top_talkers", action=action, ports=frozenset({25}),
                           src_subnets=frozenset({pool}), dst_except=frozenset(own_servers),
                           active_from=active_from),
                      max_connections=max_connections, window_s=window_s)
